"""The one error family (:mod:`stpipe.errors`): paths, hints and the rendered report a user reads."""

from __future__ import annotations

import pickle

import pytest

from stpipe.errors import ConfigError, Problem, StpipeError, config_error, did_you_mean, format_path


def test_paths_read_as_yaml_paths():
    assert format_path(("modules", 0, "sub_modules", "query", 1)) == "modules[0].sub_modules.query[1]"
    assert format_path(()) == "<root>"


def test_did_you_mean_finds_the_close_name_or_nothing():
    assert did_you_mean("meen", ["mean", "max", "cls"]) == "did you mean 'mean'?"
    assert did_you_mean("MEAN", ["mean"]) == "did you mean 'mean'?"  # case alone
    assert did_you_mean("zzz", ["mean", "max"]) is None


def test_a_config_error_renders_every_problem_and_counts_the_errors():
    err = ConfigError([Problem(code="schema.enum", path=("modules", 1, "pooling_mode"), message="'meen' is not an "
                               "allowed value", source="m.yaml:4:19", expected="one of: mean, max", found="'meen'",
                               hint="did you mean 'mean'?"),
                       Problem(code="graph.route-dims", path=("modules",), message="routes differ",
                               severity="warning")])
    assert err.render() == (
        "invalid model definition: 1 problem\n"
        "error [schema.enum] modules[1].pooling_mode: 'meen' is not an allowed value\n"
        "    at m.yaml:4:19\n    expected: one of: mean, max\n    found: 'meen'\n    hint: did you mean 'mean'?\n"
        "warning [graph.route-dims] modules: routes differ")
    assert err.codes == ["schema.enum", "graph.route-dims"] and len(err.errors) == 1 and len(err.warnings) == 1
    again = pickle.loads(pickle.dumps(err))
    assert again.render() == err.render()  # a worker process can send it back whole


def test_one_problem_shorthand_and_the_family():
    err = config_error("run.output", ("output",), "cannot write", hint="choose another file")
    assert isinstance(err, StpipeError) and isinstance(err, ValueError)
    assert err.problems[0].path_str == "output" and err.problems[0].hint == "choose another file"
    with pytest.raises(StpipeError):
        raise err
