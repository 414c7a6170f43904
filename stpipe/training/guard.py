"""Training stops on a non-finite loss or gradient, before the optimiser applies it: a NaN or infinite value never
reaches the weights, so no checkpoint and no final model is written from a diverged run. The error
(:class:`TrainingDiverged`, exit 2) names the step and the data rows of the batch (their file lines and labels).

A row's position in the training data travels with it: :class:`Row` is the tuple the dataset yields, carrying its
index, and the collator passes the batch's indices on (``inputs["rows"]``).
"""

from __future__ import annotations

import math
from typing import Any

from stpipe.errors import CommandError


class TrainingDiverged(CommandError):
    """The loss or a gradient became NaN or infinite; nothing from that step on was applied or saved."""


class Row(tuple):
    """A training row (a tuple of its values) that knows its index in the training data."""

    index: int

    @classmethod
    def at(cls, values: tuple[Any, ...], index: int) -> Row:
        row = cls(values)
        row.index = index
        return row


def describe_rows(indices: list[int] | None, data: Any, limit: int = 5) -> str:
    """``data lines 4, 9 of train.csv (labels: 1e+300, 0.5)`` for the rows of a batch."""
    if not indices:
        return "the rows of this batch are unknown"
    lines = getattr(data, "lines", None) or []
    where = [str(lines[i]) if i < len(lines) else f"row {i + 1}" for i in indices[:limit]]
    more = f" and {len(indices) - limit} more" if len(indices) > limit else ""
    text = f"data lines {', '.join(where)}{more} of {getattr(data, 'path', 'the training data')}"
    label = getattr(data, "label_column", None)
    if label is not None:
        k = data.columns.index(label)
        labels = [data.rows[i][k] for i in indices[:limit]]
        text += f" (labels: {', '.join(f'{v:g}' for v in labels)})"
    return text


def _advice(data: Any) -> str:
    return ("Check those rows (a label far outside the others?); data.score_range=[LO,HI] refuses labels outside "
            "a range and scales them to 0..1; a lower training.learning_rate or training.max_grad_norm=1.0 helps a "
            "run that diverges. Nothing from this step on was applied or saved; checkpoints before it are intact.")


def check_loss(loss: Any, step: int, indices: list[int] | None, data: Any) -> None:
    """TrainingDiverged when the batch's loss is not a finite number."""
    value = float(loss.detach().float().cpu()) if hasattr(loss, "detach") else float(loss)
    if not math.isfinite(value):
        raise TrainingDiverged(f"training stopped at step {step}: the loss is {value} (not a finite number). The batch "
                               f"held {describe_rows(indices, data)}. {_advice(data)}")


def check_gradients(model: Any, step: int, indices: list[int] | None, data: Any) -> None:
    """TrainingDiverged when some parameter's gradient holds NaN or inf (one reduction, one device sync)."""
    import torch

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    finite = torch.stack([torch.isfinite(g).all() for g in grads]).all()
    if not bool(finite):
        names = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        raise TrainingDiverged(f"training stopped at step {step}: the gradient of {len(names)} parameter(s) is not "
                               f"finite (first: {names[0]}). The batch held {describe_rows(indices, data)}. "
                               f"{_advice(data)}")
