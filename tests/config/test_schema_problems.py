"""JSON Schema errors as problems (:mod:`stpipe.config.schema_problems`): one problem per mistake, with the exact
path, code and "did you mean"; an integer is a Python int."""

from __future__ import annotations

import pytest

from stpipe.config.schema import validate_schema

from .test_schema import one


def test_unknown_key_did_you_mean():
    p = one({"type": "Pooling", "poolng_mode": "mean"})
    assert (p.code, p.path_str, p.hint) == ("schema.unknown-key", "modules[0].poolng_mode",
                                            "did you mean 'pooling_mode'?")
    assert p.expected == "one of: type, id, load_from, embedding_dimension, pooling_mode, include_prompt"


def test_misspelt_required_key_is_one_problem():
    p = one({"type": "Dense", "in_feature": 3, "out_features": 2})
    assert (p.code, p.path_str, p.hint) == ("schema.unknown-key", "modules[0].in_feature",
                                            "did you mean 'in_features'?")


def test_enum_did_you_mean_through_anyof():
    p = one({"type": "Pooling", "pooling_mode": "meen"})
    assert (p.code, p.path_str, p.found, p.hint) == ("schema.enum", "modules[0].pooling_mode", "'meen'",
                                                     "did you mean 'mean'?")
    p = one({"type": "Pooling", "pooling_mode": ["mean", "maxx"]})
    assert (p.code, p.path_str, p.hint) == ("schema.enum", "modules[0].pooling_mode[1]", "did you mean 'max'?")


def test_type_required_range_empty():
    p = one({"type": "Pooling", "embedding_dimension": "384"})
    assert (p.code, p.path_str, p.message) == ("schema.type", "modules[0].embedding_dimension",
                                               "expected integer or null, found string")
    p = one({"type": "Dense", "in_features": 3})
    assert (p.code, p.path_str) == ("schema.required", "modules[0].out_features")
    p = one({"type": "Dense", "in_features": 0, "out_features": 2})
    assert (p.code, p.path_str, p.expected) == ("schema.range", "modules[0].in_features", "a value >= 1")
    p = one({"type": "Pooling", "pooling_mode": []})
    assert (p.code, p.path_str) == ("schema.empty", "modules[0].pooling_mode")
    assert [(p.code, p.path_str) for p in validate_schema({"modules": []})] == [("schema.empty", "modules")]


def test_bool_is_not_an_integer():
    p = one({"type": "Dense", "in_features": True, "out_features": 2})
    assert (p.code, p.path_str) == ("schema.type", "modules[0].in_features")


@pytest.mark.parametrize("node, path, expected", [
    ({"type": "Transformer", "model_name_or_path": "m", "max_seq_length": 1e9}, "modules[0].max_seq_length",
     "integer or null"),
    ({"type": "Dense", "in_features": 32.0, "out_features": 2}, "modules[0].in_features", "integer"),
])
def test_a_float_is_not_an_integer(node, path, expected):
    """JSON Schema counts 1e9 as an integer; the constructors refuse it, so validation must too."""
    assert [(p.code, p.path_str, p.message) for p in validate_schema({"modules": [node]})] == [
        ("schema.type", path, f"expected {expected}, found number")]
