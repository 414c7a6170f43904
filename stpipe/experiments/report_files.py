"""The scale of ``stpipe report``'s chart (``report.png``, drawn by :func:`stpipe.experiments.report.plot`): a
y-axis that spans the values, not 0 … max, and bars that carry their values, so 0.936 and 0.917 differ visibly.

>>> y_limits([0.936, 0.917, None])
(0.9075, 0.9455)
>>> value_labels([0.936, None])
['0.9360', '']
"""

from __future__ import annotations


def y_limits(values: list[float | None]) -> tuple[float, float]:
    """The y-axis of the chart: the values' range plus half of it on each side (room for the labels); 0 … 1 when
    no value is there, ±0.5 around a single value."""
    finite = [v for v in values if v is not None]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    pad = (hi - lo) / 2 if hi > lo else 0.5
    return round(lo - pad, 10), round(hi + pad, 10)


def value_labels(values: list[float | None]) -> list[str]:
    """Each bar's value, 4 decimals (empty for a point without a value)."""
    return ["" if v is None else f"{v:.4f}" for v in values]
