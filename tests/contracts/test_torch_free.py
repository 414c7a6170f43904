"""Validation without torch: ``stpipe validate`` and ``stpipe schema`` import neither torch nor transformers.

Each case runs in a fresh interpreter (this test process has long imported torch) and prints which of the
heavy modules ended up in ``sys.modules``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stpipe import registry

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "sentence_transformers")

_PROBE = """
import contextlib, io, json, sys
{body}
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


def _heavy_after(body: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    code = _PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cli(*commands: list[str]) -> str:
    """Code running each ``stpipe`` command line in turn, in-process."""
    code = "from stpipe.cli import main\n"
    for args in commands:
        code += ("with contextlib.redirect_stdout(io.StringIO()):\n"
                 f"    rc = main({list(args)!r})\n"
                 "assert rc == 0, rc\n")
    return code


@pytest.mark.parametrize("commands", [
    [["validate", "model=minilm"], ["schema"]],
    [["validate", "model=minilm", "--explain"]],
], ids=lambda c: " + ".join(" ".join(a) for a in c))
def test_cli_validation_imports_no_torch(commands):
    assert _heavy_after(_cli(*commands)) == []


def test_importing_validation_imports_no_torch():
    assert _heavy_after("import stpipe.config.validate, stpipe.contracts, stpipe.registry") == []


def test_graph_of_every_builtin_type_imports_no_torch(tmp_path):
    """Every built-in type is described by its contract, a load_from folder read without torch."""
    (tmp_path / "d").mkdir()
    header = json.dumps({"linear.weight": {"dtype": "F32", "shape": [3, 384], "data_offsets": [0, 4608]}}).encode()
    (tmp_path / "d" / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(4608))
    (tmp_path / "d" / "config.json").write_text(json.dumps({"in_features": 384, "out_features": 3}))
    (tmp_path / "x").mkdir()  # an export's manifest (read as JSON, like a Dense's safetensors header)
    (tmp_path / "x" / "stpipe_export.json").write_text(json.dumps({"routes": {"": {"dimension": 5}}}))
    definition = {"modules": [
        {"type": "Router", "sub_modules": {
            "query": [{"type": "SparseStaticEmbedding", "tokenizer": "all-MiniLM-L6-v2"}],
            "document": [{"type": "Transformer", "model_name_or_path": "all-MiniLM-L6-v2"},
                         {"type": "Pooling", "pooling_mode_mean_tokens": True},
                         {"type": "Dense", "load_from": str(tmp_path / "d")},
                         {"type": "Normalize"}],
            "static": [{"type": "StaticEmbedding", "tokenizer": "t", "embedding_dim": 3}],
            "splade": [{"type": "Transformer", "model_name_or_path": "all-MiniLM-L6-v2",
                        "transformer_task": "fill-mask"}, {"type": "SpladePooling"}],
            "rerank": [{"type": "Transformer", "model_name_or_path": "all-MiniLM-L6-v2",
                        "transformer_task": "text-generation"}, {"type": "LogitScore", "true_token_id": 1}],
            "graph": [{"type": "GraphEncoder", "export_dir": str(tmp_path / "x")}]}}]}
    body = ("from stpipe.config.validate import inspect_definition\n"
            f"report = inspect_definition({definition!r})\n"
            "assert sorted({t.type for t in report.trace}) == " + repr(sorted(registry.names())) + "\n"
            "dense = next(t for t in report.trace if t.type == 'Dense')\n"
            "assert dense.produced == {'sentence_embedding': 3}, dense\n"
            "graph = next(t for t in report.trace if t.type == 'GraphEncoder')\n"
            "assert graph.produced == {'sentence_embedding': 5}, graph\n")
    assert _heavy_after(body) == []


@pytest.mark.slow  # a fresh interpreter
def test_validate_a_saved_directory_imports_no_torch(tmp_path):
    """``stpipe validate SAVED_DIR`` (issue 18): the saved folder is composed into a definition by the codec —
    JSON, built-in types through their contracts — so neither torch nor transformers is imported. The folder is
    sentence-transformers' all-MiniLM-L6-v2 (Transformer, Pooling, Normalize) plus a Dense with weights."""
    import shutil

    from stpipe.resources import bundled_model_dir

    model = tmp_path / "m"
    shutil.copytree(bundled_model_dir(), model)
    entries = json.loads((model / "modules.json").read_text())
    (model / "3_Dense").mkdir()
    (model / "3_Dense" / "config.json").write_text(json.dumps({"in_features": 384, "out_features": 8}))
    header = json.dumps({"linear.weight": {"dtype": "F32", "shape": [8, 384], "data_offsets": [0, 8 * 384 * 4]}})
    header += " " * (-len(header) % 8)
    (model / "3_Dense" / "model.safetensors").write_bytes(
        len(header).to_bytes(8, "little") + header.encode() + bytes(8 * 384 * 4))
    entries.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (model / "modules.json").write_text(json.dumps(entries))
    assert _heavy_after(_cli(["validate", str(model)])) == []
