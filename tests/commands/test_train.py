"""``stpipe train`` (:mod:`stpipe.commands.train`), the cheap part: where its output goes, and settings that cannot
train refused before any weight loads. Training runs: tests/training/."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from stpipe.commands.train import output_dir


def test_the_output_directory_of_a_run_and_of_a_sweep_job(tmp_path):
    assert output_dir(SimpleNamespace(run={"out": "m"}), None) == Path("m")
    assert output_dir(SimpleNamespace(run={}), tmp_path / "3") == tmp_path / "3"
    assert output_dir(SimpleNamespace(run={"out": "m"}), tmp_path / "3") == tmp_path / "3" / "m"
    default = output_dir(SimpleNamespace(run={}), None)
    assert default.parts[:2] == ("outputs", "train") and len(default.parts) == 3


def test_bad_training_settings_are_exit_2_before_anything_loads(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli("train", "training.epochs=-1")
    assert rc == 2 and "training.epochs" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
