"""Trainer callbacks: the metrics log (``metrics.jsonl``), early stopping on the main metric, the PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class MetricsLog(TrainerCallback):
    """Appends every log (loss, learning rate, evaluation metrics) as one JSON line ``{"step", "epoch", …}``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def truncate(self, step: int) -> None:
        """Drop the lines after ``step`` (a resumed run logs them again)."""
        if not self.path.is_file():
            return
        keep = [ln for ln in self.path.read_text(encoding="utf-8").splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= step]
        self.path.write_text("".join(ln + "\n" for ln in keep), encoding="utf-8")

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


def mean_logged_loss(path: Path) -> float | None:
    """The training loss over the whole run from the log: each logged ``loss`` (the mean since the previous log)
    weighted by its steps — the same for a resumed run as for an uninterrupted one (transformers' own
    ``train_loss`` averages only the steps of the last session)."""
    if not path.is_file():
        return None
    total = steps = 0.0
    prev = 0
    for ln in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(ln) if ln.strip() else {}
        if "loss" in row:
            total += float(row["loss"]) * (row["step"] - prev)
            steps += row["step"] - prev
            prev = row["step"]
    return total / steps if steps else None


class EarlyStopping(TrainerCallback):
    """Stops when ``eval_<metric>`` has not improved by more than ``threshold`` for ``patience`` evaluations."""

    def __init__(self, metric: str, patience: int, threshold: float = 0.0) -> None:
        self.metric, self.patience, self.threshold = metric, patience, threshold
        self.best: float | None = None
        self.bad = 0

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                    **kw: Any) -> None:
        value = (metrics or {}).get(f"eval_{self.metric}")
        if value is None:
            return
        if self.best is None or value > self.best + self.threshold:
            self.best, self.bad = value, 0
        else:
            self.bad += 1
            if self.bad >= self.patience:
                control.should_training_stop = True


def plot_metrics(jsonl: Path, png: Path, metric: str | None) -> str:
    """Training loss (and ``eval_<metric>``) against the step, as a PNG; a note when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is not installed (pip install 'stpipe[plot]')"
    rows = [json.loads(ln) for ln in jsonl.read_text(encoding="utf-8").splitlines() if ln.strip()] \
        if jsonl.is_file() else []
    loss = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    ev = [(r["step"], r[f"eval_{metric}"]) for r in rows if metric and f"eval_{metric}" in r]
    fig, ax = plt.subplots(figsize=(7, 4.4), layout="constrained")
    if loss:
        ax.plot(*zip(*loss), label="training loss", color="tab:blue")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if ev:
        ax2 = ax.twinx()
        ax2.plot(*zip(*ev), "o-", label=f"eval {metric}", color="tab:orange")
        ax2.set_ylabel(metric)
    if loss or ev:  # above the axes, never over the curves
        fig.legend(loc="outside upper center", ncols=2, frameon=False)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return f"wrote {png}"
