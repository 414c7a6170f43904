"""``stpipe report SWEEP_DIR [out=DIR]``: one table of all points of a sweep (``stpipe VERB -m``).

Printed to the terminal and written as ``report.md``, ``report.csv`` and ``report.png`` (a bar chart of the main
metric) in SWEEP_DIR, or in ``out=DIR``. The chart needs matplotlib (the extra ``stpipe[plot]``): without it the
table, the Markdown and the CSV are still written and the command exits 0 with a warning line on stderr — the
table is the report, the chart an extra. Reads only the sweep's files: imports no torch.

A sweep of ``stpipe evaluate`` (its points report ``throughput``) also gets the speed–quality front and
``pareto.png`` (:mod:`stpipe.experiments.report_pareto`); ``best=fastest within=0.01`` names the fastest point
whose main metric is at most 0.01 below the best one's — the deployment to pick on the machine that ran the sweep.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stpipe.commands.common import out_override
from stpipe.errors import CommandError
from stpipe.files import atomic_write

USAGE = ("usage: stpipe report SWEEP_DIR [out=DIR] [best=fastest [within=0.01]]  (SWEEP_DIR: what `stpipe VERB -m` "
         "wrote, e.g. multirun/DATE/TIME)")


def _settings(sweep_dir: str, overrides: list[str]) -> tuple[Path, str | None, float]:
    """``out`` (default SWEEP_DIR), ``best`` (fastest or None) and ``within`` (default 0.01)."""
    rest, best, within = [], None, None
    for item in overrides:
        key, _, value = item.partition("=")
        if key == "best":
            if value != "fastest":
                raise CommandError(f"best={value}: the one choice is best=fastest (the fastest point within the "
                                   "quality budget `within`)")
            best = value
        elif key == "within":
            try:
                within = float(value)
            except ValueError:
                within = -1.0
            if not within >= 0 or within == float("inf"):
                raise CommandError(f"within={value}: give a quality budget ≥ 0, e.g. within=0.01")
        else:
            rest.append(item)
    if within is not None and best is None:
        raise CommandError("within= is the quality budget of best=fastest; add best=fastest")
    out = Path(out_override(rest, USAGE, "DIR") or sweep_dir)
    if out.exists() and not out.is_dir():
        raise CommandError(f"out={out} is a file, not a directory")
    return out, best, 0.01 if within is None else within


def _write(path: Path, text: str) -> None:
    """Atomically, through an exclusive temporary with an unpredictable name (never a planted link)."""
    with atomic_write(path, "w", "utf-8") as fh:
        fh.write(text)


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    from stpipe.experiments import report, report_pareto

    if model is None:
        raise CommandError(USAGE)
    if flags:
        raise CommandError(f"no options here (got {' '.join(sorted(flags))}); {USAGE}")
    sweep = report.read_sweep(model)
    out, best, within = _settings(model, overrides)
    pareto = report_pareto.lines(sweep, best, within)
    print(report.render_table(sweep), end="")
    print("".join(report.render_cell(line, "term") + "\n" for line in pareto), end="")
    markdown = report.to_markdown(sweep) + "".join(["\n"] + [report.render_cell(x, "md") + "  \n" for x in pareto]
                                                   if pareto else [])
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in (("report.md", markdown), ("report.csv", report.to_csv(sweep))):
            _write(out / name, text)
            written.append(out / name)
    except OSError as exc:
        raise CommandError(f"cannot write the report into {out}: {exc.strerror or exc}") from exc
    try:
        written.append(report.plot(sweep, out / "report.png"))
    except CommandError as exc:
        print(f"stpipe report: warning: {exc}", file=sys.stderr)
    except (OSError, ValueError) as exc:  # a full disk, or matplotlib refusing a label
        print(f"stpipe report: warning: no chart: {exc}", file=sys.stderr)
    if pareto:
        try:
            written.append(report_pareto.plot(sweep, out / "pareto.png", best, within))
        except CommandError as exc:
            print(f"stpipe report: warning: {exc}", file=sys.stderr)
        except (OSError, ValueError) as exc:
            print(f"stpipe report: warning: no speed–quality chart: {exc}", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
