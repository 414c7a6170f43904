"""The files ``stpipe report`` writes besides the terminal table: ``report.md``, ``report.csv`` and ``report.png``
(a bar chart of the main metric whose y-axis spans the values, not 0 … max, and whose bars carry their values, so
0.936 and 0.917 differ visibly). Re-exported by :mod:`stpipe.experiments.report`.

>>> y_limits([0.936, 0.917, None])
(0.9075, 0.9455)
>>> value_labels([0.936, None])
['0.9360', '']
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

from stpipe.errors import CommandError

if TYPE_CHECKING:
    from stpipe.experiments.report import Sweep


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


def to_markdown(sweep: Sweep) -> str:
    """The report as Markdown: summary lines, a table (every cell escaped), the best point."""
    from stpipe.experiments.report import counts, render_cell, rows, summary

    header, body = rows(sweep)
    out = [f"# Sweep report: {render_cell(str(sweep.path), 'md')}", ""]
    out += [render_cell(line, "md") + "  " for line in [counts(sweep), *summary(sweep)[1:]]]
    out += ["", "| " + " | ".join(render_cell(c, "md") for c in header) + " |",
            "|" + "|".join("---:" if c in sweep.metric_names or c in ("#", "seconds") else "---" for c in header)
            + "|"]
    out += ["| " + " | ".join(render_cell(c, "md") for c in row) + " |" for row in body]
    best = sweep.best_line()
    if best:
        out += [""] + [render_cell(line, "md") + "  " for line in best.splitlines()]
    return "\n".join(out) + "\n"


def to_csv(sweep: Sweep) -> str:
    """The table as CSV (the csv module's quoting; floats exact; the status message whole)."""
    from stpipe.experiments.report import rows

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header, body = rows(sweep, numbers="exact")
    writer.writerow([csv_cell(c) for c in header])
    writer.writerows([csv_cell(c) for c in row] for row in body)
    return buffer.getvalue()


def csv_cell(text: str) -> str:
    """A CSV cell that a spreadsheet cannot run: text starting with ``= + - @`` (or a tab / carriage return) is a
    formula to Excel and LibreOffice, so it gets a leading ``'`` (OWASP's advice) — unless it is a number
    (``-0.5``, ``-inf``), which stays as written so the file reads back as the same floats.

    >>> csv_cell("=1+2"), csv_cell("-0.25"), csv_cell("lr=1e-5")
    ("'=1+2", '-0.25', 'lr=1e-5')
    """
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def plot(sweep: Sweep, path: str | Path) -> Path:
    """A bar chart of the main metric per point (a point without a value: its status in red) as PNG.
    matplotlib missing → :class:`CommandError` naming the extra to install."""
    from stpipe.experiments.report import render_cell

    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise CommandError("no chart: matplotlib is not installed; install stpipe[plot] "
                           "(pip install 'stpipe[plot]')") from exc
    name = sweep.main_metric
    if name is None:
        raise CommandError("no chart: the points name no main metric")
    labels = [" ".join(f"{k.rsplit('.', 1)[-1]}={p.overrides.get(k, '')}" for k in sweep.columns) or f"#{p.num}"
              for p in sweep.points]
    labels = [render_cell(label, "term").replace("$", r"\$") for label in labels]  # text, never mathtext
    values = [v if p.status == "ok" and isinstance(v := p.metrics.get(name), float) and math.isfinite(v) else None
              for p in sweep.points]
    fig = Figure(figsize=(max(6.0, 0.6 * len(labels) + 2), 4.5), layout="constrained")
    ax = fig.add_subplot()
    xs = range(len(labels))
    lo, hi = y_limits(values)
    bars = ax.bar(xs, [lo if v is None else v for v in values], color="tab:blue")
    ax.bar_label(bars, labels=value_labels(values), padding=2, fontsize=8)
    ax.set_ylim(lo, hi)
    for x, v, p in zip(xs, values, sweep.points, strict=True):
        if v is None:
            text = {"failed": " FAILED", "ok": " no value"}.get(p.status, f" {p.status}")
            ax.text(x, lo, text, rotation=90, color="tab:red", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(list(xs), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(name)
    ax.set_title(f"{name} per point")
    out = Path(path)
    fig.savefig(out, format="png", dpi=100)
    return out
