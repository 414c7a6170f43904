"""The results of a sweep directory (``stpipe VERB -m``: Hydra's multirun layout), read into :class:`Sweep`.

The layout read here is fixed in the sweep contract (:mod:`stpipe.commands.sweep` writes it): ``<dir>/<job.num>/``
with ``.hydra/overrides.yaml`` and ``metrics.json`` (success) or ``error.json`` (failure), ``<dir>/multirun.yaml``,
and with the optuna sweeper ``<dir>/optimization_results.yaml``. Only these files are read — no torch, no stpipe
model code. Everything read is data; a point whose files cannot be read is reported as ``unreadable: FILE:
reason``, the others still are. :mod:`stpipe.experiments.report` renders a :class:`Sweep`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stpipe.errors import CommandError

Status = Literal["ok", "failed", "missing", "unreadable"]
#: the cell of a point that has neither metrics.json nor error.json
MISSING = "not run / still running"


@dataclass
class Point:
    """One job of a sweep: ``<dir>/<num>/``."""

    num: int
    overrides: dict[str, str]
    status: Status
    metrics: dict[str, float | None] = field(default_factory=dict)
    main_metric: str | None = None
    error: str | None = None  # "ConfigError: one-line message", or "unreadable: metrics.json: reason"
    seconds: float | None = None

    def label(self) -> str:
        """The status cell: ``ok``, ``FAILED: …``, ``not run / still running`` or ``unreadable: …``."""
        if self.status == "ok":
            return "ok"
        if self.status == "failed":
            return f"FAILED: {self.error}"
        if self.status == "missing":
            return MISSING
        return str(self.error)


@dataclass
class Sweep:
    """All points of a sweep directory, in job-number order, and what distinguishes them."""

    path: Path
    points: list[Point]
    main_metric: str | None
    columns: list[str]  # override keys whose values differ between points
    common: dict[str, str]  # override keys with one value for all points
    metric_names: list[str]  # the main metric first, then the others as first seen
    optuna: dict[str, Any] | None = None  # {"best_params": {...}, "best_value": float} or {"unreadable": reason}

    def best(self) -> Point | None:
        """The ok point with the highest main metric (the lowest for a name with "loss" in it)."""
        name = self.main_metric
        scored = [(p, v) for p in self.points if p.status == "ok" and isinstance(v := p.metrics.get(name or ""), float)
                  and math.isfinite(v)]  # null and NaN rank nowhere
        if not scored or name is None:
            return None
        sign = -1 if "loss" in name.lower() else 1
        return max(scored, key=lambda pv: sign * pv[1])[0]


def read_sweep(path: str | Path) -> Sweep:
    """Read every ``<path>/<num>/`` job directory. Not a sweep directory (no numbered job directory and no
    ``multirun.yaml``) → :class:`CommandError`."""
    root = Path(path)
    if not root.is_dir():
        what = "is a file, not a directory" if root.exists() else "does not exist"
        raise CommandError(f"'{root}' {what}; stpipe report reads a sweep directory (what `stpipe VERB -m` writes)")
    jobs = sorted((int(d.name), d) for d in root.iterdir() if d.is_dir() and d.name.isdigit())
    if not jobs and not (root / "multirun.yaml").is_file():
        raise CommandError(f"'{root}' is not a sweep directory: it has no numbered job directories (0/, 1/ …) and "
                           "no multirun.yaml; give the directory `stpipe VERB -m` wrote (hydra.sweep.dir, "
                           "by default multirun/<date>/<time>)")
    points = [read_point(num, d) for num, d in jobs]
    main = _main_metric(points)
    names = [main] if main else []
    for p in points:
        names += [n for n in p.metrics if n not in names]
    columns, common = _distinguishing(points)
    return Sweep(root, points, main, columns, common, names, _read_optuna(root))


def read_point(num: int, job: Path) -> Point:
    """One job directory: metrics.json (ok), else error.json (failed), else missing."""
    overrides, problem = _read_overrides(job / ".hydra" / "overrides.yaml")
    for name in ("metrics.json", "error.json"):
        file = job / name
        if not file.is_file():
            continue
        try:
            data = _read_json(file)
            if not overrides:
                overrides = _parse_overrides(data.get("overrides", []))
            seconds = _optional_number(data.get("seconds"), "seconds")
            if name == "error.json":
                error = f"{_text(data.get('error', 'error'))}: {_text(data.get('message', ''))}".rstrip(": ")
                return Point(num, overrides, "failed", error=error, seconds=seconds)
            metrics = _metrics(data.get("metrics", {}))
            main = data.get("main_metric")
            if main is not None and not isinstance(main, str):
                raise ValueError(f"main_metric is {type(main).__name__}, not a name")
            return Point(num, overrides, "ok", metrics, main, seconds=seconds)
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            return Point(num, overrides, "unreadable", error=f"unreadable: {name}: {_one_line(exc)}")
    if problem:
        return Point(num, overrides, "unreadable", error=f"unreadable: .hydra/overrides.yaml: {problem}")
    return Point(num, overrides, "missing")


def _read_json(file: Path) -> dict:
    data = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    return data


def _metrics(raw: object) -> dict[str, float | None]:
    if not isinstance(raw, dict):
        raise ValueError(f"metrics is {type(raw).__name__}, not an object of name: number")
    return {str(k): _optional_number(v, f"metric '{k}'") for k, v in raw.items()}


def _optional_number(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is {value!r}, not a number")
    return float(value)


def _read_overrides(file: Path) -> tuple[dict[str, str], str | None]:
    if not file.is_file():
        return {}, None
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        return _parse_overrides(data or []), None
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        return {}, _one_line(exc)


def _parse_overrides(items: object) -> dict[str, str]:
    """``["model.modules.1.pooling_mode=cls", "+x=1"]`` → ``{"model.modules.1.pooling_mode": "cls", "x": "1"}``."""
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError("overrides is not a list of 'key=value' strings")
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key.lstrip("+~")] = value
    return out


def _read_optuna(root: Path) -> dict[str, Any] | None:
    file = root / "optimization_results.yaml"
    if not file.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("best_params"), dict):
            raise ValueError("no best_params mapping (a multi-objective study's 'solutions' are not reported)")
        value = _optional_number(data.get("best_value"), "best_value")
        return {"best_params": {str(k): v for k, v in data["best_params"].items()}, "best_value": value}
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        return {"unreadable": _one_line(exc)}


def _main_metric(points: list[Point]) -> str | None:
    """The main metric the points name most often (ties: the first named)."""
    named = [p.main_metric for p in points if p.main_metric]
    return max(dict.fromkeys(named), key=named.count) if named else None


def _distinguishing(points: list[Point]) -> tuple[list[str], dict[str, str]]:
    keys = list(dict.fromkeys(k for p in points for k in p.overrides))
    columns, common = [], {}
    for key in keys:
        values = {p.overrides.get(key) for p in points}
        if len(values) == 1:
            common[key] = points[0].overrides[key]
        else:
            columns.append(key)
    return columns, common


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)
