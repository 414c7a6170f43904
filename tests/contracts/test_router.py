"""The Router's rules (:mod:`stpipe.contracts.router`): one code for a mistake, in validation and in the
constructor alike."""

from __future__ import annotations

import pytest

from stpipe.config.validate import inspect_definition
from stpipe.contracts.router import default_route_problem, route_target_problem
from stpipe.errors import ConfigError


@pytest.mark.parametrize("router, code, path", [
    ({"default_route": "documnet"}, "check.default-route", "default_route"),
    ({"route_mappings": [{"task": "q", "route": "quer"}]}, "check.route-target", "route_mappings[0].route"),
    ({"route_mappings": [{"modality": "text", "route": "query"}, {"modality": ["text"], "route": "document"}]},
     "check.duplicate-mapping", "route_mappings[1]"),
])
def test_router_mistakes_have_one_code_in_validation_and_construction(router, code, path):
    from stpipe.modules.normalize import Normalize
    from stpipe.modules.router import Router

    static = {"type": "StaticEmbedding", "tokenizer": "t", "embedding_dim": 2}
    node = {"type": "Router", "sub_modules": {"query": [static], "document": [static]}, **router}
    found = [(p.code, p.path_str) for p in inspect_definition({"modules": [node]}).problems if p.code == code]
    assert found == [(code, f"modules[0].{path}")]
    with pytest.raises(ConfigError) as exc:
        Router({"query": [Normalize()], "document": [Normalize()]}, **router)
    assert [(p.code, p.path_str) for p in exc.value.problems] == [(code, path)]


def test_the_problems_name_the_routes_and_the_closest_one():
    p = default_route_problem("documnet", ["query", "document"])
    assert (p.code, p.path_str, p.hint) == ("check.default-route", "default_route",
                                            "did you mean 'document'? available routes: query, document")
    assert default_route_problem("query", ["query", "document"]) is None
    assert default_route_problem(None, ["query"]) is None
    p = route_target_problem("x", ["query"], ("route_mappings", 0, "route"))
    assert (p.code, p.path_str) == ("check.route-target", "route_mappings[0].route")
