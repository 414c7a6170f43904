"""Bounds of a sweep (``stpipe VERB -m``), checked before anything is expanded or launched.

* :func:`count_points`: how many points the sweep overrides make, computed from the overrides alone (a
  ``range(0,100000000)`` is counted, never listed), so a sweep above the run setting ``max_sweep_points``
  (``conf/config.yaml``, default 10000) is refused with its count before Hydra's basic sweeper would build every
  combination in memory.
* :func:`subdir_problem`: ``hydra.sweep.subdir`` keeps every job's directory inside ``hydra.sweep.dir`` — a
  relative path without ``..``, using only the interpolations ``${hydra.job.num}``, ``${hydra.job.id}`` and
  ``${hydra.job.override_dirname}`` (whose override values may not hold a ``..`` path segment).
* :class:`Progress`: a line on stderr every few seconds while the points are composed and validated.

>>> from stpipe.config.overrides import parse_overrides
>>> count_points(parse_overrides(["a=range(0,100000000)", "b=1,2", "c=x"]))
200000000
>>> subdir_problem("../../outside", [])
"hydra.sweep.subdir='../../outside' leaves the sweep directory ('..' is a parent directory)"
"""

from __future__ import annotations

import decimal
import math
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: the default of the run setting ``max_sweep_points`` (conf/config.yaml says the same)
DEFAULT_MAX_POINTS = 10000
SAFE_INTERPOLATIONS = ("hydra.job.num", "hydra.job.id", "hydra.job.override_dirname")


def values_in(override: Any) -> int:
    """How many values one parsed sweep override takes (a glob of config options: counted as 1)."""
    from hydra.core.override_parser.types import ChoiceSweep, RangeSweep

    from stpipe.errors import ConfigError, Problem

    value = override.value()
    if isinstance(value, ChoiceSweep):
        return len(value.list)
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if all(isinstance(v, int) for v in (start, stop, step)) and step != 0:
            return len(range(start, stop, step))
        d_start, d_stop, d_step = (decimal.Decimal(str(v)) for v in (start, stop, step))
        if d_step == 0:
            raise ConfigError([Problem(code="override.sweep", path=(), source=f"override `{override.input_line}`",
                                       message="a range() with step 0 never ends", hint="e.g. range(0,1,0.25)")],
                              title="invalid sweep")
        return max(0, math.ceil((d_stop - d_start) / d_step))
    return 1


def count_points(sweeps: Sequence[Any]) -> int:
    """The number of points Hydra's basic sweeper makes of these parsed overrides (a key given twice: the last)."""
    per_key: dict[str, int] = {}
    for o in sweeps:
        per_key[o.get_key_element()] = values_in(o) if o.is_sweep_override() else 1
    return math.prod(per_key.values())


def max_points(fixed: Sequence[str], config_dir: Path) -> int:
    """The run setting ``max_sweep_points``: an override, else ``config.yaml``'s value, else the default."""
    for o in reversed(fixed):
        key, eq, value = o.lstrip("+").partition("=")
        if key == "max_sweep_points" and eq and value.strip().isdigit():
            return int(value)
    try:
        from stpipe.config.sources import load_yaml

        value = load_yaml(config_dir / "config.yaml")[0].get("max_sweep_points")
    except Exception:  # noqa: BLE001 - Hydra reports a broken config.yaml in its own composition
        value = None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else DEFAULT_MAX_POINTS


def check_size(sweeps: Sequence[Any], fixed: Sequence[str], config_dir: Path) -> int:
    """The sweep's point count; a ConfigError naming it when above ``max_sweep_points``."""
    from stpipe.errors import ConfigError, Problem

    n, limit = count_points(sweeps), max_points(fixed, config_dir)
    if n > limit:
        raise ConfigError([Problem(
            code="override.sweep-size", path=("max_sweep_points",), message=f"the sweep has {n:,} points, more than "
            f"max_sweep_points={limit:,}", source=", ".join(f"override `{o.input_line}`" for o in sweeps
                                                            if o.is_sweep_override()),
            hint="sweep fewer values (a coarser range() step), use an optimising sweeper (hydra/sweeper=optuna), or "
                 "raise the limit: max_sweep_points=N")], title="invalid sweep")
    return n


def subdir_problem(raw: Any, overrides: Sequence[str]) -> str | None:
    """Why ``hydra.sweep.subdir`` (as written, before interpolation) could put a job outside the sweep
    directory; None when it cannot."""
    if not isinstance(raw, str):
        return None if raw is None else f"hydra.sweep.subdir={raw!r} is not a path"
    text = raw
    for ref in re.findall(r"\$\{([^}]*)\}", raw):
        name = ref.strip()
        if name not in SAFE_INTERPOLATIONS:
            return (f"hydra.sweep.subdir={raw!r} uses ${{{ref}}}: only "
                    + ", ".join(f"${{{n}}}" for n in SAFE_INTERPOLATIONS) + " are allowed there")
        if name == "hydra.job.override_dirname":
            bad = next((o for o in overrides if ".." in re.split(r"[/\\]", o.partition("=")[2])), None)
            if bad is not None:
                return (f"hydra.sweep.subdir={raw!r} names the directory after the overrides, and `{bad}` holds a "
                        "'..' path segment")
        text = text.replace("${" + ref + "}", "0")
    if text.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", text):
        return f"hydra.sweep.subdir={raw!r} is an absolute path"
    if ".." in re.split(r"[/\\]", text):
        return f"hydra.sweep.subdir={raw!r} leaves the sweep directory ('..' is a parent directory)"
    if not text.strip() or text.strip() in (".",):
        return f"hydra.sweep.subdir={raw!r} is the sweep directory itself: the jobs would share one directory"
    return None


def outside(job_dir: Path, sweep_dir: Path) -> bool:
    """True when ``job_dir`` is not strictly below ``sweep_dir`` (links resolved)."""
    job, root = job_dir.resolve(), sweep_dir.resolve()
    return job == root or root not in job.parents


class Progress:
    """``validating sweep points: N of M (S s)`` on stderr, at most every ``interval`` seconds, for sweeps of more
    than ``quiet_below`` points."""

    def __init__(self, total: int, *, interval: float = 2.0, quiet_below: int = 20) -> None:
        self.total, self.interval, self.quiet = total, interval, total < quiet_below
        self.t0 = self.last = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if self.quiet or (now - self.last < self.interval and done < self.total):
            return
        self.last = now
        print(f"validating sweep points: {done} of {self.total} ({now - self.t0:.0f} s)", file=sys.stderr,
              flush=True)
