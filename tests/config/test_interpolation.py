"""Interpolation (:mod:`stpipe.config.interpolation`): a model definition never reads the environment (it would be
saved with the model); the run settings may — and their environment values are never written into a run's record:
run.yaml of a single evaluate/train and of every sweep job, and training.yaml, keep the interpolation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stpipe.config.compose import compose
from stpipe.errors import ConfigError
from stpipe.resources import dataset_file
from stpipe.training.config import TrainingPlan, record_of

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


SECRET = "s3cr3t-t0ken-value"


def test_the_run_record_keeps_the_interpolation(monkeypatch):
    monkeypatch.setenv("STPIPE_TEST_SECRET", SECRET)
    monkeypatch.setenv("STPIPE_TEST_LR", "0.125")
    c = compose("minilm", ["query=${oc.env:STPIPE_TEST_SECRET}", "prompt=x-${query}", "training=default",
                           "training.learning_rate=${oc.env:STPIPE_TEST_LR}", "batch_size=3"])
    assert c.run["query"] == SECRET and c.run["prompt"] == f"x-{SECRET}"  # the run itself uses the values
    record = c.run_record()
    assert record["query"] == "${oc.env:STPIPE_TEST_SECRET}" and record["prompt"] == "x-${query}"
    assert record["batch_size"] == 3 and SECRET not in str(record) and "0.125" not in str(record)
    rec = record_of(record, c.run)
    assert rec["training"]["learning_rate"] == "${oc.env:STPIPE_TEST_LR}" and rec["training"]["epochs"] == 1

    class Data:
        name, path, columns, rows = "d", Path("/x.csv"), ["a", "b", "score"], [("x", "y", 1.0)]

    plan = TrainingPlan(settings=c.run["training"], loss={"name": "cosent"}, data=Data(), eval_data=None, record=rec)
    assert "0.125" not in str(plan.recorded()) and plan.recorded()["data"]["path"] == "/x.csv"


@pytest.mark.slow
def test_evaluate_and_its_sweep_write_no_environment_value(tmp_path, tiny_bert_dir):
    (tmp_path / "tiny.yaml").write_text(f"modules:\n  - type: Transformer\n    model_name_or_path: {tiny_bert_dir}\n"
                                        "  - type: Pooling\n")
    lines = dataset_file("stsb-dev").read_text(encoding="utf-8").splitlines()[:12]
    (tmp_path / "small.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STPIPE_TEST_SECRET": SECRET}
    common = ["evaluate", "tiny.yaml", "data=stsb-dev", "data.path=small.csv", "query=${oc.env:STPIPE_TEST_SECRET}"]
    for extra in (["out=single"], ["-m", "truncate_dim=8,16", "hydra.sweep.dir=sweep"]):
        r = subprocess.run([sys.executable, "-m", "stpipe", *common, *extra], capture_output=True, text=True,
                           cwd=tmp_path, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".yaml", ".json")]
    run_yamls = [p for p in written if p.name == "run.yaml"]
    assert len(run_yamls) == 3
    assert all("${oc.env:STPIPE_TEST_SECRET}" in p.read_text() for p in run_yamls)
    assert [p for p in written if SECRET in p.read_text()] == []
