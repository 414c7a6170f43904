"""Interpolation (:mod:`stpipe.config.interpolation`): a model definition never reads the environment (it would be
saved with the model); the run settings may."""

from __future__ import annotations

import pytest

from stpipe.config.compose import compose
from stpipe.errors import ConfigError

from .conftest import OTHER


def test_model_definitions_may_not_read_the_environment(conf, monkeypatch, tmp_path):
    monkeypatch.setenv("STPIPE_TEST_SECRET", "hunter2")
    with pytest.raises(ConfigError) as info:
        compose(None, ["model.name=${oc.env:STPIPE_TEST_SECRET}"], config_dir=conf)
    assert [(p.code, p.path_str) for p in info.value.problems] == [("yaml.env-interpolation", "model.name")]
    assert "hunter2" not in str(info.value)
    f = tmp_path / "m.yaml"
    f.write_text("name: x-${oc.env:STPIPE_TEST_SECRET}\n" + OTHER.split("\n", 1)[1])
    with pytest.raises(ConfigError) as info:
        compose(str(f), [], config_dir=conf)
    assert info.value.problems[0].source == f"{f}:1:1"
    with pytest.raises(ConfigError, match="yaml.env-interpolation"):
        compose(None, ["+secret=${oc.env:STPIPE_TEST_SECRET}", "model.name=${secret}"], config_dir=conf)
    monkeypatch.setenv("STPIPE_TEST_DEVICE", "cpu")  # the run settings may: they are never saved
    assert compose(None, ["device=${oc.env:STPIPE_TEST_DEVICE}"], config_dir=conf).run["device"] == "cpu"


def test_build_refuses_environment_interpolation_too(monkeypatch):
    import stpipe

    monkeypatch.setenv("STPIPE_TEST_SECRET", "hunter2")
    with pytest.raises(ConfigError) as info:
        stpipe.build({"name": "${oc.env:STPIPE_TEST_SECRET}", "modules": [{"type": "Normalize"}]}, validate=False)
    assert [(p.code, p.path_str) for p in info.value.problems] == [("yaml.env-interpolation", "name")]
