"""A plugin's node schema derived from its constructor (:mod:`stpipe.config.schema_derived`): parameter names,
required ones, evident types; ``**kwargs`` accepts other keys."""

from __future__ import annotations

import pytest

from stpipe import registry
from stpipe.config.schema import combined_schema
from stpipe.config.schema_derived import derived_schema

from .test_schema import _Plain, probs


class _Scale(_Plain):
    def __init__(self, factor: float = 2.0, name: str | None = None, *, axes: list[int] | None = None,
                 mode, custom: _Plain | None = None) -> None:
        super().__init__()


class _Open(_Plain):
    def __init__(self, size: int, **kwargs) -> None:
        super().__init__()


@pytest.fixture
def signature_plugins():
    registry.register(_Scale, name="ScalePlugin")
    registry.register(_Open, name="OpenPlugin")
    yield
    registry.unregister("ScalePlugin")
    registry.unregister("OpenPlugin")


def test_plugin_schema_derived_from_the_constructor(signature_plugins):
    assert probs({"type": "ScalePlugin", "mode": "x", "factor": 3, "name": None, "axes": [1], "custom": "any"}) == []
    out = probs({"type": "ScalePlugin", "factr": 3, "mode": 1})
    assert [(p.code, p.path_str, p.hint) for p in out] == [
        ("schema.unknown-key", "modules[0].factr", "did you mean 'factor'?")]
    out = probs({"type": "ScalePlugin", "factor": "abc", "name": 3, "axes": "x"})
    assert [(p.code, p.path_str, p.expected) for p in out] == [
        ("schema.type", "modules[0].factor", "number"), ("schema.type", "modules[0].name", "string or null"),
        ("schema.type", "modules[0].axes", "list or null"), ("schema.required", "modules[0].mode", None)]
    assert probs({"type": "ScalePlugin", "load_from": "/saved"}) == []  # a saved folder supplies the rest
    assert "ScalePlugin" in combined_schema()["$defs"]


def test_plugin_with_kwargs_accepts_other_keys_but_checks_its_own(signature_plugins):
    assert probs({"type": "OpenPlugin", "size": 3, "anything": 1}) == []
    assert [p.code for p in probs({"type": "OpenPlugin", "size": "3"})] == ["schema.type"]
    assert [(p.code, p.path_str) for p in probs({"type": "OpenPlugin"})] == [("schema.required", "modules[0].size")]


def test_a_constructor_without_parameters_of_its_own_gives_no_schema():
    assert derived_schema(_Plain, "PlainPlugin") is None
    schema = derived_schema(_Open, "OpenPlugin")
    assert schema["properties"]["size"] == {"type": "integer"} and schema["additionalProperties"] is True
