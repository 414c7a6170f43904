"""The Trainer glue (:mod:`stpipe.training.trainer`): parameter names, freezing, learning-rate groups, checkpoints."""

from __future__ import annotations

import pytest
import torch

from stpipe.errors import ConfigError
from stpipe.modules.dense import Dense
from stpipe.training.trainer import drop_incomplete, freeze, last_checkpoint, param_groups, qualified_names


def _model():
    return torch.nn.Sequential(Dense(2, 3), Dense(3, 1))


def test_names_below_their_stpipe_module():
    assert qualified_names(_model())["1.linear.bias"] == "Dense.linear.bias"


def test_freeze_by_pattern_and_a_pattern_that_matches_nothing():
    m = _model()
    assert freeze(m, [r"^0\."]) == 2
    assert [n for n, p in m.named_parameters() if not p.requires_grad] == ["0.linear.weight", "0.linear.bias"]
    with pytest.raises(ConfigError, match="'Transformer' matches no parameter") as info:
        freeze(m, ["Transformer"])
    assert "Dense.linear.bias" in info.value.problems[0].hint


def test_one_group_per_rate_and_decay():
    m = _model()
    groups = param_groups(m, 1e-3, {r"^1\.": 0.1}, 0.01, {"0.linear.weight", "1.linear.weight"})
    summary = sorted((g["lr"], g["weight_decay"], tuple(g["names"])) for g in groups)
    assert summary == [(0.001, 0.0, ("0.linear.bias",)), (0.001, 0.01, ("0.linear.weight",)),
                       (0.1, 0.0, ("1.linear.bias",)), (0.1, 0.01, ("1.linear.weight",))]


def test_the_last_complete_checkpoint_and_the_incomplete_ones_dropped(tmp_path):
    for n, complete in ((5, True), (10, True), (15, False)):
        (tmp_path / f"checkpoint-{n}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{n}" / "trainer_state.json").write_text(f'{{"global_step": {n}}}')
    (tmp_path / "checkpoint-x").mkdir()
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    drop_incomplete(tmp_path, after=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-5", "checkpoint-x"]
    assert last_checkpoint(tmp_path / "none") is None
