"""The reranker example: ``examples/reranker.py`` runs as a user runs it (its own process, the stand-ins in a model
store), and ``conf/model/reranker.yaml`` scores and ranks as sentence-transformers' ``CrossEncoder`` does on the same
stand-in checkpoint (``minilm-rerank``), saved both ways."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stpipe
from stpipe.resources import conf_dir

pytestmark = pytest.mark.slow  # a real MiniLM-sized model, and a subprocess

REPO = Path(__file__).resolve().parent.parent
QUERY = "How many people live in Berlin?"
DOCS = ["Berlin had a population of 3,520,031 registered inhabitants.", "Berlin is well known for its museums.",
        "In 2014, the city state Berlin had 37,368 live births.", "Paris is the capital of France."]


def test_reranker_example_runs(standins):
    env = {**os.environ, "STPIPE_MODELS": str(standins["minilm-rerank"].parent), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    r = subprocess.run([sys.executable, str(REPO / "examples" / "reranker.py")], capture_output=True, text=True,
                       env=env, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "built minilm-reranker: CrossEncoder, 1 label, activation torch.nn.modules.activation.Sigmoid" in r.stdout
    assert "predict: 3 scores" in r.stdout and r.stdout.count("rank: corpus_id=") == 2


def test_reranker_yaml_matches_sentence_transformers(standins, tmp_path):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    ours = stpipe.build(conf_dir() / "model" / "reranker.yaml", device="cpu")
    ref = STCrossEncoder(str(standins["minilm-rerank"]), device="cpu", max_length=256)
    pairs = [(QUERY, d) for d in DOCS]
    assert np.abs(ours.predict(pairs) - ref.predict(pairs)).max() <= 1e-5
    assert [h["corpus_id"] for h in ours.rank(QUERY, DOCS)] == [h["corpus_id"] for h in ref.rank(QUERY, DOCS)]
    ours.save(tmp_path / "ours")
    again = STCrossEncoder(str(tmp_path / "ours"), device="cpu")
    assert np.abs(again.predict(pairs) - ref.predict(pairs)).max() <= 1e-5


def test_reranker_yaml_validates_without_torch(standins):
    """No weights can load when neither torch nor transformers is imported (a fresh interpreter)."""
    code = ("import contextlib, io, json, sys\nfrom stpipe.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    rc = main(['validate', 'model=reranker', '--explain'])\n"
            "assert rc == 0 and 'scores[1]' in out.getvalue(), out.getvalue()\n"
            "print(json.dumps([m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
           "STPIPE_MODELS": str(standins["minilm-rerank"].parent)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
