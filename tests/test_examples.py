"""``examples/*.py`` run as a user runs them: ``python examples/make_standins.py`` fills a fresh model store
(``STPIPE_MODELS``), then each example script runs in its own process; exit code and key output are checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow  # every example runs in its own process

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def run(script: str, store: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STPIPE_MODELS": str(store), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A model store filled by the script itself (``--dir``), with STPIPE_MODELS pointing elsewhere."""
    d = tmp_path_factory.mktemp("store-by-script")
    r = run("make_standins.py", tmp_path_factory.mktemp("unused"), "--dir", str(d))
    assert r.returncode == 0, r.stderr
    for name in ("minilm-static", "minilm-mlm", "tiny-clip", "minilm-to-clip"):
        assert f"wrote {name} -> {d / name}" in r.stdout
    return d


def test_make_standins_is_deterministic(store, standins):
    """Fixed seeds: the script's files hold exactly the tensors of the in-process build (conftest's store)."""
    for name, path in standins.items():
        files = sorted(p.name for p in path.iterdir())
        assert files == sorted(p.name for p in (store / name).iterdir())
        ours, theirs = load_file(str(path / "model.safetensors")), load_file(str(store / name / "model.safetensors"))
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert (store / "minilm-mlm" / "idf.json").read_bytes() == (standins["minilm-mlm"] / "idf.json").read_bytes()


def test_make_standins_rejects_unknown_names(tmp_path):
    r = run("make_standins.py", tmp_path, "--dir", str(tmp_path), "tiny-clp")
    assert r.returncode == 2 and "unknown stand-in(s) ['tiny-clp']" in r.stderr and "Traceback" not in r.stderr


def test_asymmetric(store):
    r = run("asymmetric.py", store)
    assert r.returncode == 0, r.stderr
    assert "routes ['query', 'document'], dimension 384" in r.stdout
    assert "query embedding (384,), document embedding (384,)" in r.stdout
    assert "Similarity: tensor([[" in r.stdout
    assert r.stdout.count("best document") == 2


def test_sparse(store):
    r = run("sparse.py", store)
    assert r.returncode == 0, r.stderr
    assert "SparseEncoder, similarity dot" in r.stdout and "Similarity: tensor([[" in r.stdout
    assert "Top tokens 10 for each text:" in r.stdout
    shown = [ln for ln in r.stdout.splitlines() if ln.startswith("Token: ")]
    assert 1 <= len(shown) <= 10 and all("Query score: " in ln and "Document score: " in ln for ln in shown)


def test_multimodal(store):
    r = run("multimodal.py", store)
    assert r.returncode == 0, r.stderr
    assert "modalities [('image', 'text'), 'image', 'text'], dimension 16" in r.stdout
    assert "text (16,), image (16,), text+image (16,)" in r.stdout
    assert "Similarity text vs text+image: tensor([[" in r.stdout


def test_hybrid(store):
    r = run("hybrid.py", store)
    assert r.returncode == 0, r.stderr
    assert "routes ['query_text', 'doc_text', 'image'], dimension 16" in r.stdout
    assert "projection shared by query_text and doc_text: True" in r.stdout
    for line in ("query -> route query_text", "document -> route doc_text", "text+image -> route image"):
        assert line in r.stdout
    assert "Similarity query vs document: tensor([[" in r.stdout


def test_example_writes_missing_standins_itself(tmp_path):
    r = run("multimodal.py", tmp_path / "empty-store")
    assert r.returncode == 0, r.stderr
    assert "writing stand-in models tiny-clip, minilm-to-clip" in r.stdout
    assert sorted(p.name for p in (tmp_path / "empty-store").iterdir()) == ["minilm-to-clip", "tiny-clip"]


def test_audio_text(store):
    r = run("audio_text.py", store)
    assert r.returncode == 0, r.stderr
    assert "modalities [('audio', 'text'), 'audio', 'text'], dimension 32" in r.stdout
    assert "audio (2, 32), text (2, 32), mixed (2, 32)" in r.stdout
    assert "Similarity audio vs text: tensor([[" in r.stdout
    assert "from the file: (32,)" in r.stdout or ("refused: input 0 (" in r.stdout and "stpipe[audio]" in r.stdout)


def test_chat_embedder(store):
    r = run("chat_embedder.py", store)
    assert r.returncode == 0, r.stderr
    assert "modalities ['text', 'message'], dimension 32" in r.stdout
    assert ("'<|im_start|>system\\nGiven a question, retrieve passages that answer it<|im_end|>\\n<|im_start|>user\\n"
            "what is the capital of france?<|im_end|>\\n'") in r.stdout
    assert "query (32,), documents (2, 32), conversation (32,)" in r.stdout
    assert "Similarity conversation vs documents: tensor([[" in r.stdout
