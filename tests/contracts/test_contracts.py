"""The contracts and the runtime classes cannot drift: same parameters, config files and keys, input-ness, the
same ``describe``; the names validation accepts are the names the runtime resolves; the graph stage never
skips a node it cannot describe; a Router mistake has one code in validation and in the constructor."""

from __future__ import annotations

import inspect
import logging

import pytest

from stpipe import registry
from stpipe.config.graph import check_graph
from stpipe.modules.module import InputModule

BUILTINS = [n for n in registry.names() if registry.spec(n).origin == "builtin"]


def _init_params(cls: type) -> tuple[str, ...]:
    return tuple(n for n, p in inspect.signature(cls.__init__).parameters.items()
                 if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))


@pytest.mark.parametrize("name", BUILTINS)
def test_contract_matches_its_class(name):
    spec = registry.spec(name)
    contract, cls = spec.contract, spec.cls
    assert contract.name == name and cls.contract is contract
    assert contract.params == _init_params(cls)
    assert contract.is_input == issubclass(cls, InputModule)
    assert contract.config_file_name == cls.config_file_name
    assert list(contract.config_keys) == list(cls.config_keys)
    assert dict(contract.config_key_renames) == dict(cls.config_key_renames)
    if name != "Router":  # the graph stage walks a Router's routes itself
        assert cls.describe is contract.describe, "the class must use its contract's describe"


def test_a_node_that_cannot_be_described_is_reported_not_skipped():
    """No contract and a class that does not import: the walk says it cannot follow the features, instead of
    letting [Pooling, Dense] after it pass unchecked."""
    registry._add(registry.ModuleSpec(name="Broken", target="stpipe_no_such_package:Broken", origin="entry-point"))
    try:
        out = check_graph({"modules": [{"type": "Broken"}, {"type": "Pooling"}, {"type": "Dense", "in_features": 3,
                                                                                "out_features": 2}]})
    finally:
        registry.unregister("Broken")
    assert [(p.code, p.path_str) for p in out] == [("graph.undescribable", "modules[0].type")]
    assert "stpipe_no_such_package.Broken" in out[0].message


def test_router_max_seq_length_without_input_modules_that_have_one_warns_like_the_oracle(caplog):
    from sentence_transformers.base.modules.router import Router as STRouter
    from sentence_transformers.sentence_transformer.modules import Normalize as STNormalize

    from stpipe.modules.normalize import Normalize
    from stpipe.modules.router import Router

    with caplog.at_level(logging.WARNING):
        STRouter({"a": [STNormalize()]}).max_seq_length = 12
    expected = [r.getMessage() for r in caplog.records]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Router({"a": [Normalize()]}).max_seq_length = 12
    assert [r.getMessage() for r in caplog.records] == expected
    assert expected == ["No modules have a max_seq_length attribute to set."]
