"""``stpipe train`` end to end: checks before any weight loads, a learning-rate sweep reported one row per rate,
resuming after SIGKILL (the rerun under ``accelerate launch``, so the entry point is shown to launch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stpipe.cli import main
from tests.training.conftest import train_args

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture()
def no_build(monkeypatch):
    """Any weight load (building the pipeline) fails the test."""
    import stpipe.commands.common as common
    import stpipe.commands.train  # noqa: F401  before common.pipeline is patched: train's own name stays the real one

    def refuse(composed):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(common, "pipeline", refuse)
    monkeypatch.setattr("stpipe.commands.train.pipeline", refuse)


def test_bad_data_line_fails_before_weights(tiny_setup, no_build, capsys):
    bad = tiny_setup["dir"] / "bad.csv"
    lines = tiny_setup["train"].read_text().splitlines()
    lines[3] = "\t".join(lines[3].split("\t")[:4] + ["five", *lines[3].split("\t")[5:]])
    bad.write_text("\n".join(lines) + "\n")
    args = train_args(tiny_setup, f"data.path={bad}", f"out={tiny_setup['dir'] / 'o'}")
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert "invalid training data" in err and f"{bad}:4" in err and "'five'" in err
    assert not (tiny_setup["dir"] / "o").exists()


def test_loss_data_mismatch_fails_before_weights(tiny_setup, no_build, capsys):
    args = train_args(tiny_setup, "loss=mnrl", f"out={tiny_setup['dir'] / 'o'}")
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert "loss.columns" in err and "takes no score" in err and "'score'" in err


def test_missing_score_column_is_named(tiny_setup, no_build, capsys):
    f = tiny_setup["dir"] / "pairs.jsonl"
    f.write_text('{"a": "x", "b": "y"}\n')
    args = train_args(tiny_setup, f"data.path={f}", "data.format=jsonl")
    assert main(["train", *args]) == 2
    assert "needs a score column ('score' or 'label'); the data has columns: a, b" in capsys.readouterr().err


def test_bad_training_setting_fails_before_weights(tiny_setup, no_build, capsys):
    assert main(["train", *train_args(tiny_setup, "training.precision=fp8")]) == 2
    assert "training.precision" in capsys.readouterr().err


def _run(args, cwd, check=True):
    p = subprocess.run([sys.executable, "-m", "stpipe", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                       timeout=600)
    if check:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


@pytest.mark.slow
def test_learning_rate_sweep_reports_one_row_per_rate(tiny_setup, capsys):
    d = tiny_setup["dir"]
    sweep = d / "sweep"
    _run(["train", *train_args(tiny_setup, "training.max_steps=2", "training.save_steps=null", "-m",
                                "training.learning_rate=1e-5,3e-5,1e-4", f"hydra.sweep.dir={sweep}")], d)
    for i in range(3):
        m = json.loads((sweep / str(i) / "metrics.json").read_text())
        assert m["main_metric"] == "spearman_cosine" and m["metrics"]["global_step"] == 2
        assert (sweep / str(i) / "model" / "modules.json").is_file()
    assert main(["report", str(sweep)]) == 0
    rows = [ln for ln in (sweep / "report.csv").read_text().splitlines()[1:] if ln.strip()] \
        if (sweep / "report.csv").is_file() else []
    out = capsys.readouterr().out
    assert len(rows) == 3, out
    for lr in ("1e-05", "3e-05", "0.0001"):
        assert any(lr in r for r in rows), rows
    assert "spearman_cosine" in out


KILL_AFTER_CHECKPOINT = """
import os, signal, sys
from stpipe.training.callbacks import MetricsLog
def on_save(self, args, state, control, **kw):
    if state.global_step == 4:
        os.kill(os.getpid(), signal.SIGKILL)
MetricsLog.on_save = on_save
from stpipe.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_after_checkpoint_then_rerun_resumes_to_the_same_end(tiny_setup):
    d = tiny_setup["dir"]
    common = ["training.max_steps=8", "training.save_steps=2", "training.eval_steps=4"]
    assert main(["train", *train_args(tiny_setup, *common, f"out={d / 'whole'}")]) == 0  # uninterrupted
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_CHECKPOINT, "train",
                             *train_args(tiny_setup, *common, f"out={d / 'cut'}")], cwd=d, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (d / "cut" / "checkpoint-4" / "trainer_state.json").is_file() and not (d / "cut" / "model").exists()
    # the same command again — through `accelerate launch` (one process), so the entry point is shown to launch
    p = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--cpu",
                        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "stpipe.cli",
                        "train", *train_args(tiny_setup, *common, f"out={d / 'cut'}")], cwd=d, env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "resuming from" in p.stdout and "checkpoint-4" in p.stdout
    whole = json.loads((d / "whole" / "metrics.json").read_text())
    cut = json.loads((d / "cut" / "metrics.json").read_text())
    assert cut["global_step"] == whole["global_step"] == 8
    for k, v in whole["metrics"].items():
        assert cut["metrics"][k] == pytest.approx(v, abs=1e-4), k
    steps = [json.loads(ln)["step"] for ln in (d / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # the lines logged after checkpoint-4 by the killed run were dropped
