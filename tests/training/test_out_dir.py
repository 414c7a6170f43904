"""A training output directory (``stpipe/training/out_dir.py``): a finished run's rerun changes nothing, raised
``max_steps`` continues, other settings are refused unless ``overwrite=force``, and a user's own files there are
never replaced."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from stpipe.cli import main
from tests.training.conftest import train_args
from tests.training.test_train_cli import ENV


def _tree(d):
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


@pytest.mark.slow
def test_finished_rerun_changes_nothing_and_raised_steps_continue(tiny_setup, capsys):
    d = tiny_setup["dir"]
    out = d / "run"
    args = train_args(tiny_setup, "training.save_steps=2", f"out={out}")
    assert main(["train", *args, "training.max_steps=2"]) == 0
    before = _tree(out / "model")
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*"))
    metrics = (out / "metrics.json").read_bytes()
    # the user reruns the same command: told it is finished, nothing changes
    p = subprocess.run([sys.executable, "-m", "stpipe", "train", *args, "training.max_steps=2"], cwd=d, env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "already finished" in p.stdout and "resuming" not in p.stdout, p.stdout
    assert _tree(out / "model") == before
    assert sorted(p.name for p in out.glob("checkpoint-*")) == checkpoints == ["checkpoint-2"]
    assert (out / "metrics.json").read_bytes() == metrics
    # more steps on purpose: continues from checkpoint-2
    capsys.readouterr()
    assert main(["train", *args, "training.max_steps=4"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 4
    # other settings: refused, nothing touched; overwrite=force starts clean
    now = _tree(out)
    assert main(["train", *args, "training.max_steps=4", "training.learning_rate=1e-3"]) == 2
    err = capsys.readouterr().err
    assert "learning_rate" in err and "overwrite=force" in err, err
    assert _tree(out) == now
    assert main(["train", *args, "training.max_steps=2", "training.learning_rate=1e-3", "overwrite=force"]) == 0
    assert "resuming" not in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]


def test_users_files_in_out_are_never_replaced(tiny_setup, capsys, monkeypatch):
    import stpipe.commands.train as train

    monkeypatch.setattr(train, "pipeline", lambda composed: pytest.fail("weights were loaded"))
    out = tiny_setup["dir"] / "mine"
    (out / "checkpoint-99").mkdir(parents=True)
    (out / "checkpoint-99" / "notes.txt").write_text("mine")
    (out / "definition.yaml").write_text("my own definition\n")
    (out / "run.yaml").write_text("my own run\n")
    before = _tree(out)
    assert main(["train", *train_args(tiny_setup, "training.max_steps=2", f"out={out}")]) == 2
    err = capsys.readouterr().err
    assert "checkpoint-99/" in err and "definition.yaml" in err and "did not write" in err, err
    assert _tree(out) == before and sorted(p.name for p in out.iterdir()) == ["checkpoint-99", "definition.yaml",
                                                                               "run.yaml"]
