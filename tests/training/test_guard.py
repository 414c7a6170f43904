"""Training never produces a model from a diverged run: a non-finite loss or gradient stops it at that step with
the data lines of the batch (exit 2), labels outside a declared score_range are refused before any weight loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from stpipe.cli import main
from stpipe.training.data import read_training_data
from stpipe.training.guard import Row, TrainingDiverged, check_gradients, check_loss
from tests.training.conftest import train_args


def hostile_csv(tmp_path, label="1e300"):
    rows = [("a cat sits", "a cat is sitting", "0.9"), ("a dog runs", "the sky is blue", "0.1"),
            ("she reads", "he sleeps", label), ("a red car", "a fast car", "0.6")]
    f = tmp_path / "hostile.csv"
    f.write_text("sentence1,sentence2,score\n" + "".join(",".join(r) + "\n" for r in rows))
    return f


def test_a_non_finite_loss_or_gradient_names_the_step_and_the_data_lines(tmp_path):
    data = read_training_data({"path": str(hostile_csv(tmp_path)), "format": "csv"})
    assert data.lines == [2, 3, 4, 5] and isinstance(Row.at(data.rows[2], 2), tuple)
    check_loss(torch.tensor(0.5), 1, [0, 1], data)
    with pytest.raises(TrainingDiverged, match=r"step 7: the loss is inf .* data lines 4, 2 of .*hostile.csv "
                                               r"\(labels: 1e\+300, 0.9\)"):
        check_loss(torch.tensor(float("inf")), 7, [2, 0], data)
    model = torch.nn.Linear(2, 1)
    model.weight.grad = torch.tensor([[1.0, float("nan")]])
    with pytest.raises(TrainingDiverged, match=r"the gradient of 1 parameter\(s\) is not finite \(first: weight\)"):
        check_gradients(model, 3, [1], data)


def test_labels_outside_a_declared_score_range_are_refused_before_weights(tiny_setup, capsys):
    f = hostile_csv(tiny_setup["dir"])
    args = train_args(tiny_setup, f"data.path={f}", "data.format=csv", "+data.score_range=[0,1]",
                      f"out={tiny_setup['dir'] / 'o'}")
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert f"{f}:4" in err and "outside the score range [0, 1]" in err and not (tiny_setup["dir"] / "o").exists()


@pytest.mark.slow
def test_a_label_of_1e300_stops_training_with_exit_2_and_writes_no_model(tiny_setup):
    f = hostile_csv(tiny_setup["dir"])
    out = tiny_setup["dir"] / "o"
    args = train_args(tiny_setup, f"data.path={f}", "data.format=csv", "data.score_range=null", "loss=cosine",
                      f"out={out}", "training.max_steps=3", "training.save_steps=1")
    r = subprocess.run([sys.executable, "-m", "stpipe", "train", *args], capture_output=True, text=True,
                       cwd=tiny_setup["dir"], env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "training stopped at step 1: the loss is" in r.stderr and "data lines" in r.stderr, r.stderr
    assert "4" in r.stderr.split("data lines")[1].split("of")[0] and "1e+300" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / "model").exists() and not list(out.glob("checkpoint-*")) and not (out / "metrics.json").exists()


@pytest.mark.slow
def test_a_damaged_checkpoint_is_a_clear_error_never_torchs_advice(tiny_setup):
    import pickle

    out = tiny_setup["dir"] / "o"
    args = ["train", *train_args(tiny_setup, f"out={out}", "training.max_steps=2", "training.save_steps=1")]

    def stpipe(*more):
        return subprocess.run([sys.executable, "-m", "stpipe", *args, *more], capture_output=True, text=True,
                              cwd=tiny_setup["dir"], env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)

    assert stpipe().returncode == 0
    resume = "training.max_steps=3"  # a finished run is not resumed: raising max_steps continues from checkpoint-2
    state = out / "checkpoint-2" / "trainer_state.json"
    good = state.read_text()
    state.write_text(good[: len(good) // 2])  # truncated
    r = stpipe(resume)
    assert r.returncode == 2 and "trainer_state.json is damaged" in r.stderr and "Delete" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    state.write_text(good)

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    (out / "checkpoint-2" / "optimizer.pt").write_bytes(pickle.dumps({"state": Evil()}))
    r = stpipe(resume)
    assert r.returncode == 2 and "optimizer.pt / scheduler.pt is damaged" in r.stderr, r.stderr
    assert "weights_only=True) refused it" in r.stderr and "Traceback" not in r.stderr
    assert "set `weights_only=False`" not in r.stderr and "weights_only` to `False`" not in r.stderr
