"""The example plugin ``examples/plugin`` (docs/plugins.md), installed as a user installs it — ``pip install``, here
``--target`` a temporary directory with no network and no build isolation, so the shared environment is not
touched — and exercised through the ``stpipe`` command in processes that see it on ``PYTHONPATH``: its module
``Scale`` is found through the ``stpipe.modules`` entry point, gets a schema derived from its signature,
validates, builds, encodes, is saved and loads back giving the same embeddings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
YAML = REPO / "examples" / "plugin" / "scaled.yaml"
TEXTS = REPO / "examples" / "data" / "sentences.txt"

LOAD_SNIPPET = """
import json, sys
import numpy as np
import stpipe
saved, encoded, texts = sys.argv[1:4]
texts = open(texts, encoding="utf-8").read().splitlines()
pipe = stpipe.load(saved)
scale = pipe[2]
plain = stpipe.build({"modules": [{"type": "Transformer", "model_name_or_path": "all-MiniLM-L6-v2"},
                                  {"type": "Pooling"}]}, device="cpu")
emb = pipe.encode(texts)
print(json.dumps({"cls": f"{type(scale).__module__}.{type(scale).__qualname__}", "factor": scale.factor,
                  "is_module": isinstance(scale, stpipe.Module),
                  "vs_encoded": float(np.abs(emb - np.load(encoded)).max()),
                  "vs_half_plain": float(np.abs(emb - 0.5 * plain.encode(texts)).max())}))
"""


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("plugin")
    src, site = root / "src", root / "site"
    shutil.copytree(REPO / "examples" / "plugin", src)  # pip writes build/ and *.egg-info next to the sources
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (site / "stpipe_scale" / "scale.py").is_file()
    return {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def run(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], env=env, capture_output=True, text=True, timeout=300,
                          cwd=REPO)


def test_without_the_plugin_the_type_is_unknown():
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    r = run(env, "-m", "stpipe", "validate", YAML)
    assert r.returncode == 2 and "unknown module type 'Scale'" in r.stderr, r.stderr


def test_the_schema_of_the_plugin_is_derived_from_its_signature(plugin_env):
    r = run(plugin_env, "-m", "stpipe", "validate", YAML, "--explain")
    assert r.returncode == 0, r.stderr
    # the class as its entry point names it (explain does not import classes), and the file defining it
    assert "Scale  stpipe_scale.Scale" in r.stdout and "stpipe_scale/__init__.py" in r.stdout
    assert "sentence_embedding[384]" in r.stdout
    r = run(plugin_env, "-m", "stpipe", "validate", YAML, "+model.modules.2.factr=2")
    assert r.returncode == 2
    assert "error [schema.unknown-key] modules[2].factr: unknown key 'factr' for Scale" in r.stderr
    assert "did you mean 'factor'?" in r.stderr and "one of: factor, learnable, feature" in r.stderr
    r = run(plugin_env, "-m", "stpipe", "validate", YAML, "model.modules.2.factor=half")
    assert r.returncode == 2 and "modules[2].factor" in r.stderr, r.stderr  # `factor: float` → a number


def test_the_plugin_builds_encodes_saves_and_loads(plugin_env, tmp_path):
    encoded, saved = tmp_path / "e.npy", tmp_path / "saved"
    r = run(plugin_env, "-m", "stpipe", "encode", YAML, f"inputs={TEXTS}", f"output={encoded}")
    assert r.returncode == 0, r.stderr
    r = run(plugin_env, "-m", "stpipe", "export", YAML, f"out={saved}")
    assert r.returncode == 0, r.stderr
    types = [m["type"] for m in json.loads((saved / "modules.json").read_text())]
    assert types[2] == "stpipe_scale.Scale"  # the entry point's class path, which resolves back to the plugin
    assert json.loads((saved / "2_Scale" / "config.json").read_text()) == {
        "factor": 0.5, "learnable": False, "feature": "sentence_embedding"}
    assert (saved / "2_Scale" / "model.safetensors").is_file()
    r = run(plugin_env, "-c", LOAD_SNIPPET, saved, encoded, TEXTS)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["cls"] == "stpipe_scale.scale.Scale" and out["factor"] == 0.5 and out["is_module"]
    assert out["vs_encoded"] == 0.0
    assert out["vs_half_plain"] <= 1e-6
