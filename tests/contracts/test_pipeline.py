"""One source per rule (issue 18): the pipeline-level facts of :mod:`stpipe.contracts.pipeline` are written there
and nowhere else in ``stpipe/`` — a grep over the source guards the ones a grep can find."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import stpipe
from stpipe.contracts import pipeline as P

PKG = Path(stpipe.__file__).parent
HOME = "contracts/pipeline.py"

#: rule → a pattern that writes it out literally; each may match only in HOME (and the listed exceptions)
RULES = {
    "node keys": (r'\(\s*"type",\s*"id",\s*"load_from"\s*\)', set()),
    "path parameters": (r'"model_name_or_path",\s*"tokenizer_name_or_path",\s*"tokenizer"', set()),
    "dtype vocabulary": (r'"fp32",\s*"bf16",\s*"fp16"', set()),
    "depth limit": (r'MAX_DEPTH\s*=\s*\d', set()),
    "model types": (r'"SentenceTransformer",\s*"SparseEncoder",\s*"CrossEncoder"', set()),
    "similarity names": (r'"cosine",\s*"dot",\s*"euclidean",\s*"manhattan"\)', set()),
    "default similarity": (r'"dot" if [^\n]*SparseEncoder', set()),
    "truncation key": (r'"(max_active_dims|truncate_dim)" if [^\n]*SparseEncoder', set()),
    "file names": (r'=\s*"(modules\.json|router_config\.json|stpipe_export\.json|config_sentence_transformers\.json)"',
                   set()),
}
#: rules whose home is another contract module: rule → (pattern, home)
ELSEWHERE = {
    "Router mapping priority": (r"\(task, None\), \(None, mod", "contracts/router.py"),
    "Router default route": (r"routes\[0\] if", "contracts/router.py"),
    "max positions": (r'"max_position_embeddings" in', "contracts/positions.py"),
    "default max_seq_length": (r"min\(length, limit\)", "contracts/positions.py"),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_is_written_once(rule):
    pattern, allowed = RULES[rule]
    found = sorted(str(f.relative_to(PKG)) for f in PKG.rglob("*.py")
                   if re.search(pattern, f.read_text(encoding="utf-8")))
    assert HOME in found, f"{rule}: the pattern no longer finds its home, fix the guard"
    assert set(found) - {HOME} <= allowed, f"{rule} written again in {sorted(set(found) - {HOME} - allowed)}"


@pytest.mark.parametrize("rule", sorted(ELSEWHERE))
def test_each_contract_rule_is_written_once(rule):
    pattern, home = ELSEWHERE[rule]
    found = sorted(str(f.relative_to(PKG)) for f in PKG.rglob("*.py")
                   if re.search(pattern, f.read_text(encoding="utf-8")))
    assert found == [home], f"{rule}: expected only in {home}, found in {found}"


def test_per_type_rules():
    assert [P.default_similarity(t) for t in P.MODEL_TYPES] == ["cosine", "dot", None]
    assert [P.truncation_key(t) for t in P.MODEL_TYPES] == ["truncate_dim", "max_active_dims", None]
    assert P.other_truncation_key("SparseEncoder") == "truncate_dim"
    assert set(P.CROSS_ENCODER_EXCLUDES) == {"similarity_fn_name", "truncate_dim", "max_active_dims"}
    assert set(P.TORCH_NAMES) | {"auto"} == set(P.DTYPES)


def test_an_export_of_a_sparse_model_keeps_dot_similarity(tmp_path):
    """The export manifest's definition used to say cosine whatever the model type."""
    import json

    from stpipe.formats.exported import to_definition

    (tmp_path / "stpipe_export.json").write_text(json.dumps({
        "stpipe_export": 1, "format": "onnx", "model_type": "SparseEncoder", "max_active_dims": 4,
        "routes": {"": {"graph": "model.onnx", "tokenizer": ".", "inputs": ["input_ids"], "dimension": 8}},
        "router": None, "files": ["model.onnx"]}))
    (tmp_path / "model.onnx").write_bytes(b"")
    definition = to_definition(tmp_path)
    assert definition["similarity_fn_name"] == "dot" and definition["max_active_dims"] == 4
