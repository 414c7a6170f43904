"""Report all points of a sweep directory (``stpipe VERB -m``): a terminal table, Markdown, CSV and a chart.

The directory is read by :func:`read_sweep` (:mod:`stpipe.experiments.sweep_results`: only the sweep's own files —
no torch, no stpipe model code); matplotlib is imported by :func:`plot` alone (the optional extra ``stpipe[plot]``).

Everything read from a file is data: a cell is escaped for the medium it is written to (terminal: control
characters shown as escapes; Markdown: ``|``, newlines and markup characters escaped; CSV: the csv module's
quoting, and a cell a spreadsheet would run as a formula prefixed with ``'``). A point whose files cannot be
read is reported as ``unreadable: FILE: reason``; the others still are.

>>> render_cell("a|b\\nc", "md")
'a\\\\|b c'
>>> render_cell("\\x1b[31mred", "term")
'\\\\x1b[31mred'
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Literal

from stpipe.errors import CommandError
from stpipe.experiments.report_files import value_labels, y_limits
from stpipe.experiments.sweep_results import MISSING, Point, Sweep, read_point, read_sweep

#: the longest status message in the terminal table (the Markdown and CSV files keep it whole)
TERMINAL_MESSAGE = 72


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e6 else f"{value:.4g}"


def best_line(sweep: Sweep) -> str | None:
    """``best: #3 k=v … metric=0.87`` and/or the optuna sweeper's best point."""
    lines = []
    best = sweep.best()
    if best is not None:
        where = [one_line(f"{k}={best.overrides.get(k, '')}") for k in sweep.columns]
        value = f"{sweep.main_metric}={_number(best.metrics[str(sweep.main_metric)])}"
        lines.append(" ".join(["best:", f"#{best.num}", *where, value]))
    if sweep.optuna is not None:
        if "unreadable" in sweep.optuna:
            lines.append(f"optuna: unreadable: optimization_results.yaml: {sweep.optuna['unreadable']}")
        else:
            params = " ".join(one_line(f"{k}={v}") for k, v in sweep.optuna["best_params"].items())
            lines.append(f"optuna best: {params} value={_number(sweep.optuna['best_value'])}")
    return "\n".join(lines) or None


_MD_SPECIAL = set("\\`*_[]<>|~&")


def one_line(text: str) -> str:
    """``text`` with its line breaks and other control characters escaped (``\\n``): a value read from a file can
    never split the line it is printed on."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def render_cell(text: str, medium: Literal["term", "md"]) -> str:
    """``text`` as a cell of the terminal table (control characters escaped) or of a Markdown table (one line,
    markup characters backslash-escaped, so a value cannot end a cell, start a link or inject HTML)."""
    if medium == "md":
        text = " ".join(text.splitlines()) if "\n" in text or "\r" in text else text
        text = "".join(f"\\{c}" if c in _MD_SPECIAL else c for c in text)
    return one_line(text)


def rows(sweep: Sweep, numbers: Literal["short", "exact"] = "short") -> tuple[list[str], list[list[str]]]:
    """The header and the rows of the table: ``#``, distinguishing overrides, metrics, seconds, status.
    ``numbers="exact"`` writes floats with ``repr`` (the CSV file: read back, they are the same floats)."""
    fmt = _number if numbers == "short" else (lambda v: "" if v is None else repr(v))
    header = ["#", *sweep.columns, *sweep.metric_names, "seconds", "status"]
    body = []
    for p in sweep.points:
        body.append([str(p.num), *(p.overrides.get(k, "") for k in sweep.columns),
                     *(fmt(p.metrics.get(m)) for m in sweep.metric_names),
                     fmt(p.seconds) if numbers == "exact" or p.seconds is None else f"{p.seconds:.1f}", p.label()])
    return header, body


def counts(sweep: Sweep) -> str:
    """``12 points: 11 results, 1 failed`` (and the points not run and unreadable, when there are)."""
    count = {s: sum(p.status == s for p in sweep.points) for s in ("ok", "failed", "missing", "unreadable")}
    parts = [f"{count['ok']} results", f"{count['failed']} failed"]
    parts += [f"{count['missing']} not run / still running"] if count["missing"] else []
    parts += [f"{count['unreadable']} unreadable"] if count["unreadable"] else []
    return f"{len(sweep.points)} points: " + ", ".join(parts)


def summary(sweep: Sweep) -> list[str]:
    """The lines above the table: the counts, the common overrides, the main metric."""
    lines = [f"sweep {sweep.path}: {counts(sweep)}"]
    if sweep.common:
        lines.append("common: " + " ".join(f"{k}={v}" for k, v in sweep.common.items()))
    if sweep.main_metric:
        lines.append(f"main metric: {sweep.main_metric}")
    return lines


def render_table(sweep: Sweep) -> str:
    """The report for the terminal: summary lines, an aligned table, the best point."""
    header, body = rows(sweep)
    for row in body:
        if len(row[-1]) > TERMINAL_MESSAGE:
            row[-1] = row[-1][: TERMINAL_MESSAGE - 1] + "…"
    table = [[render_cell(c, "term") for c in row] for row in [header, *body]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [render_cell(line, "term") for line in summary(sweep)]
    for n, row in enumerate(table):
        cells = [c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    best = best_line(sweep)
    lines += [render_cell(line, "term") for line in best.splitlines()] if best else []
    return "\n".join(lines) + "\n"


def _numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def to_markdown(sweep: Sweep) -> str:
    """The report as Markdown: summary lines, a table (every cell escaped), the best point."""
    header, body = rows(sweep)
    out = [f"# Sweep report: {render_cell(str(sweep.path), 'md')}", ""]
    out += [render_cell(line, "md") + "  " for line in [counts(sweep), *summary(sweep)[1:]]]
    out += ["", "| " + " | ".join(render_cell(c, "md") for c in header) + " |",
            "|" + "|".join("---:" if c in sweep.metric_names or c in ("#", "seconds") else "---" for c in header)
            + "|"]
    out += ["| " + " | ".join(render_cell(c, "md") for c in row) + " |" for row in body]
    best = best_line(sweep)
    if best:
        out += [""] + [render_cell(line, "md") + "  " for line in best.splitlines()]
    return "\n".join(out) + "\n"


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
    lo, hi = y_limits(values)  # the values' range, not 0 … max: 0.936 and 0.917 differ visibly
    ax.bar_label(ax.bar(xs, [lo if v is None else v for v in values], color="tab:blue"), labels=value_labels(values),
                 padding=2, fontsize=8)
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


__all__ = ["MISSING", "Point", "Sweep", "best_line", "counts", "plot", "read_point", "read_sweep", "render_cell",
           "render_table", "rows", "summary", "to_csv", "to_markdown", "csv_cell"]
