"""A sweep report as CSV (the table, floats exact) and as a PNG bar chart of the main metric — the two forms of
:mod:`stpipe.experiments.report` that are files only (``report.to_csv``, ``report.csv_cell`` and ``report.plot``
name these)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from stpipe.errors import CommandError
from stpipe.experiments.report import Sweep, render_cell, rows


def to_csv(sweep: Sweep) -> str:
    """The table as CSV (the csv module's quoting; floats exact; the status message whole)."""
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
    ax.bar(xs, [0.0 if v is None else v for v in values], color="tab:blue")
    for x, v, p in zip(xs, values, sweep.points, strict=True):
        if v is None:
            text = {"failed": " FAILED", "ok": " no value"}.get(p.status, f" {p.status}")
            ax.text(x, 0, text, rotation=90, color="tab:red", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(list(xs), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(name)
    ax.set_title(f"{name} per point")
    out = Path(path)
    fig.savefig(out, format="png", dpi=100)
    return out
