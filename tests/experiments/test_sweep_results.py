"""Reading a sweep directory (:mod:`stpipe.experiments.sweep_results`): each job directory a Point, the overrides
that differ as columns, the best point; a malformed file makes its point unreadable, never the report."""

from __future__ import annotations

import json

import pytest

from stpipe.errors import CommandError
from stpipe.experiments.sweep_results import read_sweep


def _job(root, num, overrides, metrics=None, error=None):
    d = root / str(num)
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps({"main_metric": "loss", "metrics": metrics}))
    if error is not None:
        (d / "error.json").write_text(error)


def test_points_columns_and_the_best_point(tmp_path):
    _job(tmp_path, 0, ["lr=1", "seed=0"], {"loss": 0.5})
    _job(tmp_path, 1, ["lr=2", "seed=0"], {"loss": 0.25})
    _job(tmp_path, 2, ["lr=3", "seed=0"], error=json.dumps({"error": "OOM", "message": "out of memory"}))
    _job(tmp_path, 3, ["lr=4", "seed=0"])
    sweep = read_sweep(tmp_path)
    assert [p.status for p in sweep.points] == ["ok", "ok", "failed", "missing"]
    assert sweep.columns == ["lr"] and sweep.common == {"seed": "0"} and sweep.main_metric == "loss"
    assert sweep.best().num == 1  # a loss: the lowest wins
    assert sweep.points[2].label() == "FAILED: OOM: out of memory"


def test_a_malformed_file_makes_only_its_point_unreadable(tmp_path):
    _job(tmp_path, 0, ["lr=1"], {"loss": 0.5})
    _job(tmp_path, 1, ["lr=2"], error="[1, 2]")
    (tmp_path / "0" / "metrics.json").write_text('{"metrics": {"loss": "low"}}')
    _job(tmp_path, 2, ["lr=3"], {"loss": 0.1})
    points = read_sweep(tmp_path).points
    assert [p.status for p in points] == ["unreadable", "unreadable", "ok"]
    assert points[0].error.startswith("unreadable: metrics.json: metric 'loss' is 'low', not a number")


def test_a_directory_that_is_not_a_sweep_is_refused(tmp_path):
    with pytest.raises(CommandError, match="is not a sweep directory"):
        read_sweep(tmp_path)
    with pytest.raises(CommandError, match="does not exist"):
        read_sweep(tmp_path / "nope")
