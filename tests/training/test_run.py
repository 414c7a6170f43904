"""One training run (:mod:`stpipe.training.run`), the cheap part: the resolved ``training.yaml`` it writes first and
the metric it reports. Whole runs: tests/training/test_train_cli.py."""

from __future__ import annotations

import yaml

from stpipe.experiments.data import data_config_from
from stpipe.training.config import plan
from stpipe.training.run import _main_metric_name, _write_config


def test_the_resolved_settings_are_written_before_training(tiny_setup, tmp_path):
    p = plan({"epochs": 2}, {"name": "CoSENTLoss", "scale": 10.0}, str(tiny_setup["train"]))
    out = tmp_path / "out"
    out.mkdir()
    _write_config(out, p, {"model": "tiny"})
    written = yaml.safe_load((out / "training.yaml").read_text())
    assert written["training"]["epochs"] == 2 and written["loss"] == {"name": "CoSENTLoss", "scale": 10.0}
    assert written["data"]["rows"] == 24 and written["data"]["columns"] == ["sentence1", "sentence2", "score"]
    assert written["model"] == "tiny" and [f.name for f in out.iterdir()] == ["training.yaml"]


def test_the_main_metric_follows_the_evaluation_data(tiny_setup):
    p = plan(None, {"name": "CoSENTLoss"}, str(tiny_setup["train"]))
    p.eval_data = data_config_from({"evaluator": "sts", "path": "stsb-dev", "main_similarity": "dot"})
    assert _main_metric_name(p) == "spearman_dot"
