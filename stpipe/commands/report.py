"""``stpipe report SWEEP_DIR [out=DIR]``: one table of all points of a sweep (``stpipe VERB -m``).

Printed to the terminal and written as ``report.md``, ``report.csv`` and ``report.png`` (a bar chart of the main
metric) in SWEEP_DIR, or in ``out=DIR``. The chart needs matplotlib (the extra ``stpipe[plot]``): without it the
table, the Markdown and the CSV are still written and the command exits 0 with a warning line on stderr — the
table is the report, the chart an extra. Reads only the sweep's files: imports no torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stpipe.commands.common import out_override
from stpipe.errors import CommandError
from stpipe.files import atomic_write

USAGE = "usage: stpipe report SWEEP_DIR [out=DIR]  (SWEEP_DIR: what `stpipe VERB -m` wrote, e.g. multirun/DATE/TIME)"


def _out_dir(sweep_dir: str, overrides: list[str]) -> Path:
    out = Path(out_override(overrides, USAGE, "DIR") or sweep_dir)
    if out.exists() and not out.is_dir():
        raise CommandError(f"out={out} is a file, not a directory")
    return out


def _write(path: Path, text: str) -> None:
    """Atomically, through an exclusive temporary with an unpredictable name (never a planted link)."""
    with atomic_write(path, "w", "utf-8") as fh:
        fh.write(text)


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    from stpipe.experiments import report

    if model is None:
        raise CommandError(USAGE)
    if flags:
        raise CommandError(f"no options here (got {' '.join(sorted(flags))}); {USAGE}")
    sweep = report.read_sweep(model)
    out = _out_dir(model, overrides)
    print(report.render_table(sweep), end="")
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in (("report.md", report.to_markdown(sweep)), ("report.csv", report.to_csv(sweep))):
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
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
