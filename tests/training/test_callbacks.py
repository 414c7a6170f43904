"""The training callbacks on their own: early stopping on the main metric, the metrics log's truncation on resume
and the whole-run training loss it gives."""

from __future__ import annotations

import json
from types import SimpleNamespace

from transformers import TrainerControl

from stpipe.training.callbacks import EarlyStopping, MetricsLog, mean_logged_loss


def test_early_stopping_after_patience_evaluations_without_improvement():
    cb, control = EarlyStopping("spearman_cosine", patience=2, threshold=0.01), TrainerControl()
    for value in (0.5, 0.6, 0.605, 0.59):
        assert not control.should_training_stop
        cb.on_evaluate(None, None, control, metrics={"eval_spearman_cosine": value})
    assert control.should_training_stop and cb.best == 0.6


def test_metrics_log_truncates_to_the_resumed_step_and_weights_losses_by_steps(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    state = SimpleNamespace(is_world_process_zero=True, global_step=0, epoch=0.0)
    for step, loss in ((2, 1.0), (4, 2.0), (6, 9.0)):
        state.global_step = step
        log.on_log(None, state, None, logs={"loss": loss})
    log.truncate(4)  # a run resumed from checkpoint-4 logs step 6 again
    assert [json.loads(ln)["step"] for ln in log.path.read_text().splitlines()] == [2, 4]
    state.global_step = 7
    log.on_log(None, state, None, logs={"loss": 4.0})
    assert mean_logged_loss(log.path) == (1.0 * 2 + 2.0 * 2 + 4.0 * 3) / 7
