"""The Router checks (:mod:`stpipe.config.checks_router`), case by case: code, exact path, hint."""

from __future__ import annotations

import pytest

from .test_checks import found, router


def test_empty_route():
    d = router(sub_modules={"query": [], "document": [{"type": "Normalize"}]})
    assert found(d, "check.empty-route")[0] == [("check.empty-route", "modules[0].sub_modules.query")]


def test_default_route_must_exist():
    codes, out = found(router(default_route="documnet"))
    assert codes == [("check.default-route", "modules[0].default_route")]
    assert out[0].hint == "did you mean 'document'? available routes: query, document"


def test_route_mapping_target_must_exist():
    d = router(route_mappings=[{"task": "query", "route": "query"}, {"modality": "text", "route": "document"},
                               {"task": "query", "modality": "image", "route": "imgs"}])
    codes, out = found(d)
    assert codes == [("check.route-target", "modules[0].route_mappings[2].route")]
    assert out[0].hint == "available routes: query, document"
    assert out[0].message == "route mapping points to 'imgs', which is not a route of this Router"


def test_route_target_in_a_nested_router():
    inner = router(route_mappings=[{"task": "x", "route": "qeury"}])["modules"][0]
    d = router(sub_modules={"query": [inner], "document": [{"type": "Normalize"}]})
    codes, out = found(d)
    assert codes == [("check.route-target", "modules[0].sub_modules.query[0].route_mappings[0].route")]
    assert out[0].hint.startswith("did you mean 'query'?")


def test_modality_combinations():
    d = router(route_mappings=[{"modality": ["text", "text"], "route": "query"},
                               {"modality": ["message", "text"], "route": "document"}])
    assert found(d, "check.modality")[0] == [("check.modality", "modules[0].route_mappings[0].modality"),
                                             ("check.modality", "modules[0].route_mappings[1].modality")]


def test_duplicate_mapping_is_order_insensitive_for_modalities():
    d = router(route_mappings=[{"task": "query", "modality": ["text", "image"], "route": "query"},
                               {"task": "query", "modality": ["image", "text"], "route": "document"}])
    codes, out = found(d)
    assert codes == [("check.duplicate-mapping", "modules[0].route_mappings[1]")]
    assert "route_mappings[0]" in out[0].message


def test_modality_combinations_written_with_plus():
    d = router(route_mappings=[{"modality": "image+txt", "route": "query"},
                               {"modality": "text+text", "route": "document"},
                               {"modality": "message+text", "route": "document"}])
    codes, out = found(d, "check.modality")
    assert codes == [("check.modality", "modules[0].route_mappings[0].modality"),
                     ("check.modality", "modules[0].route_mappings[1].modality"),
                     ("check.modality", "modules[0].route_mappings[2].modality")]
    assert (out[0].message, out[0].hint) == ("'txt' in 'image+txt' is not a modality", "did you mean 'text'?")


@pytest.mark.parametrize("first, second", [(["text"], "text"), ("image+text", ["text", "image"]),
                                           ("text+image", "image+text")])
def test_duplicate_mapping_as_the_router_normalises_modalities(first, second):
    """[text] is 'text' and image+text is ('image', 'text') at run time (normalize_modality): the same key."""
    d = router(route_mappings=[{"modality": first, "route": "query"}, {"modality": second, "route": "document"}])
    assert found(d)[0] == [("check.duplicate-mapping", "modules[0].route_mappings[1]")]


def test_bad_modality_names_are_not_also_duplicates():
    d = router(route_mappings=[{"modality": "imag", "route": "query"}, {"modality": ["imag"], "route": "document"}])
    assert found(d, "check.duplicate-mapping")[0] == []


def test_catch_all_mapping_is_allowed():
    d = router(route_mappings=[{"task": "query", "route": "query"}, {"route": "document"}])
    assert found(d)[0] == []


def test_unreachable_route_is_a_warning():
    d = router(sub_modules={"query": [{"type": "Normalize"}], "document": [{"type": "Normalize"}],
                            "image": [{"type": "Normalize"}]},
               route_mappings=[{"task": "query", "route": "query"}, {"route": "document"}])
    codes, out = found(d)
    assert codes == [("check.unreachable-route", "modules[0].sub_modules.image")]
    assert out[0].severity == "warning"


def test_routes_reachable_by_task_name_or_default_are_not_reported():
    d = router(sub_modules={"query": [{"type": "Normalize"}], "document": [{"type": "Normalize"}],
                            "image": [{"type": "Normalize"}]},
               route_mappings=[{"modality": "text", "route": "query"}], default_route="document")
    assert found(d)[0] == []  # "image" is reached by task="image"
