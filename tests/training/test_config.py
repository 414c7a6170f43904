"""The training plan (:mod:`stpipe.training.config`): everything checked before any weight loads."""

from __future__ import annotations

import pytest

from stpipe.errors import ConfigError
from stpipe.training.config import plan, settings_problems, with_defaults


def test_the_settings_are_the_defaults_with_the_overrides():
    merged = with_defaults({"epochs": 3})
    assert merged["epochs"] == 3 and merged["batch_size"] == 16
    assert with_defaults(None)["epochs"] == 1 and with_defaults("x") == "x"


def test_each_settings_mistake_is_named():
    codes = [(p.code, p.path_str) for p in settings_problems(with_defaults({"epochs": -1, "freeze": ["(unclosed"]}))]
    assert ("training.regex", "training.freeze") in codes and any(path == "training.epochs" for _, path in codes)
    assert [p.code for p in settings_problems([1])] == ["schema.type"]


def test_a_plan_reads_the_data_and_checks_the_router_mapping_against_its_columns(tiny_setup):
    p = plan(None, {"name": "CoSENTLoss"}, str(tiny_setup["train"]))
    assert p.data.columns == ["sentence1", "sentence2", "score"] and len(p.data.rows) == 24
    assert p.eval_data is None and p.settings["epochs"] == 1
    with pytest.raises(ConfigError) as info:
        plan({"router_mapping": {"question": "query"}}, {"name": "CoSENTLoss"}, str(tiny_setup["train"]))
    assert [p.code for p in info.value.problems] == ["training.router_mapping"]
