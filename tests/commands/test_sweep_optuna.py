"""Optuna's direction follows the metric unless the user set it (stpipe/commands/sweep_optuna.py)."""

from __future__ import annotations

from stpipe.commands.sweep_optuna import with_direction
from stpipe.resources import conf_dir


def test_direction_follows_the_metric_unless_set(capsys, tmp_path):
    assert with_direction(["x=1"], tmp_path, "evaluate") == ["x=1", "hydra.sweeper.direction=maximize"]
    assert with_direction(["metric=train_loss"], tmp_path, "train")[-1] == "hydra.sweeper.direction=minimize"
    assert "optuna: minimize train_loss" in capsys.readouterr().out
    mine = ["hydra.sweeper.direction=minimize"]
    assert with_direction(mine, tmp_path, "evaluate") == mine
    preset = ["+experiment=optuna_search"]  # the shipped preset says maximize itself
    assert with_direction(preset, conf_dir(), "evaluate") == preset
