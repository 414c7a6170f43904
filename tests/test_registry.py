"""The registry: names, sentence-transformers aliases, plugins, refusal of arbitrary import paths — and the
schemas as a product: every registered module's constructor and its JSON Schema agree, both ways."""

from __future__ import annotations

import inspect
import json

import pytest

from stpipe import registry
from stpipe.errors import ConfigError
from stpipe.modules.module import Module
from stpipe.resources import schemas_dir

NODE_KEYS = {"type", "id", "load_from"}


def _ctor_params(cls: type) -> set[str]:
    sig = inspect.signature(cls.__init__)
    return {n for n, p in sig.parameters.items()
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


@pytest.mark.parametrize("name", registry.names())
def test_constructor_and_schema_agree(name):
    cls = registry.get(name)
    schema = json.loads((schemas_dir() / "modules" / f"{name}.schema.json").read_text())
    props = set(schema["properties"]) - NODE_KEYS
    contract = registry.spec(name).contract
    props -= set(contract.legacy_params if contract is not None else ())  # taken through **kwargs, with a warning
    params = _ctor_params(cls)
    assert params - props == set(), f"{name}: constructor parameters missing from the schema"
    assert props - params == set(), f"{name}: schema properties the constructor does not take"
    required = set(schema.get("required", [])) - NODE_KEYS
    sig = inspect.signature(cls.__init__)
    no_default = {n for n in params if sig.parameters[n].default is inspect.Parameter.empty}
    # a required constructor parameter may be omitted in YAML only when `load_from` supplies it
    assert required <= no_default | {"sub_modules"}


@pytest.mark.parametrize("alias, name", [
    ("sentence_transformers.models.Transformer", "Transformer"),
    ("sentence_transformers.models.Pooling", "Pooling"),
    ("sentence_transformers.models.Normalize", "Normalize"),
    ("sentence_transformers.models.Asym", "Router"),
    ("sentence_transformers.base.modules.dense.Dense", "Dense"),
    ("sentence_transformers.sentence_transformer.modules.pooling.Pooling", "Pooling"),
    ("sentence_transformers.sparse_encoder.models.MLMTransformer", "Transformer"),
    ("sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling", "SpladePooling"),
])
def test_sentence_transformers_paths_are_aliases(alias, name):
    assert registry.spec(alias).name == name


def test_written_type_paths_are_the_ones_sentence_transformers_resolves():
    """Every st_type we write must import in sentence-transformers 6.2 to the class of the same name."""
    import importlib

    for name in registry.names():
        st_type = registry.spec(name).st_type
        mod, _, attr = st_type.rpartition(".")
        cls = getattr(importlib.import_module(mod), attr)
        assert cls.__name__ == name


def test_unknown_type_lists_names_and_suggests():
    with pytest.raises(ConfigError) as e:
        registry.spec("Normalise", path=("modules", 2, "type"))
    p = e.value.problems[0]
    assert (p.code, p.path_str, p.hint) == ("registry.unknown-type", "modules[2].type", "did you mean 'Normalize'?")
    assert "Pooling" in p.expected


def test_dotted_import_path_is_refused_not_imported():
    with pytest.raises(ConfigError) as e:
        registry.spec("os.system")
    assert "does not import classes named by a config file" in e.value.problems[0].message
    assert "stpipe.register" in e.value.problems[0].hint


def test_register_and_entry_points(monkeypatch):
    class Twice(Module):
        def forward(self, features, **kw):
            return features

        def save(self, output_path, *a, **k):
            pass

    registry.register(Twice, name="Twice")
    try:
        assert registry.get("Twice") is Twice and "Twice" in registry.names()
        assert registry.name_of(Twice()) == "Twice"
    finally:
        registry.unregister("Twice")
    assert registry.find("Twice") is None

    class EP:
        name, value = "Plugged", "stpipe.modules.normalize:Normalize"

    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "entry_points", lambda group: [EP()] if group == "stpipe.modules" else [])
    try:
        spec = registry.spec("Plugged")
        assert spec.origin == "entry-point" and spec.cls.__name__ == "Normalize"
    finally:
        registry.unregister("Plugged")


# --------------------------------------------------------------------------------- one overwrite policy (issue 18)
class _MyPooling(Module):
    def forward(self, features, **kwargs):
        return features


@pytest.mark.parametrize("taken", ["Pooling", "sentence_transformers.models.Pooling"])
def test_register_refuses_a_builtin_name_without_replace(taken):
    """Before issue 18, stpipe.register(name="Pooling") silently replaced the built-in."""
    with pytest.raises(ValueError, match="built-in module type.*replace=True"):
        registry.register(_MyPooling, name=taken)
    with pytest.raises(ValueError, match="built-in module type"):
        registry.register(_MyPooling, name="MyPooling", aliases=(taken,))
    assert registry.get("Pooling").__name__ == "Pooling" and registry.find("MyPooling") is None


def test_register_replace_true_replaces_a_builtin_and_unregister_restores_it():
    builtin = registry.get("Pooling")
    registry.register(_MyPooling, name="Pooling", replace=True)
    try:
        assert registry.get("Pooling") is _MyPooling
    finally:
        registry.unregister("Pooling")
    assert registry.get("Pooling") is builtin and registry.spec("Pooling").origin == "builtin"


def test_losses_and_evaluators_follow_the_same_policy():
    from stpipe.experiments.evaluators import EVALUATORS
    from stpipe.training.losses import LOSSES

    for catalogue, name in ((LOSSES, "cosent"), (EVALUATORS, "retrieval")):
        builtin = catalogue.get(name)
        with pytest.raises(ValueError, match="replace=True"):
            catalogue.register(_MyPooling, name=name)
        catalogue.register(_MyPooling, name=name, replace=True)
        try:
            assert catalogue.get(name) is _MyPooling
        finally:
            catalogue.unregister(name)
        assert catalogue.get(name) is builtin
