"""The speed–quality view of a sweep whose points report ``throughput`` (``stpipe evaluate -m backend=…
quantize=… threads=…``): the Pareto front (no other point is both faster and better), the fastest point within a
quality budget (``stpipe report DIR best=fastest within=0.01``) and a chart (``pareto.png``).

Quality is the sweep's main metric (higher is better; a name with "loss" in it: lower); speed is ``throughput``
(texts/s). Only ok points with both values finite take part.

>>> from stpipe.experiments.report import Point, Sweep
>>> pts = [Point(i, {"quantize": q}, "ok", {"spearman_cosine": s, "throughput": t}, "spearman_cosine")
...        for i, (q, s, t) in enumerate([("none", 0.867, 400.0), ("int8", 0.864, 700.0), ("bad", 0.80, 650.0)])]
>>> sweep = Sweep(Path("."), pts, "spearman_cosine", ["quantize"], {}, ["spearman_cosine", "throughput"])
>>> [p.num for p in front(sweep)], fastest_within(sweep, 0.01).num, fastest_within(sweep, 0.001).num
([1, 0], 1, 0)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from stpipe.errors import CommandError

SPEED = "throughput"


def _scored(sweep: Any) -> list[tuple[Any, float, float]]:
    """(point, quality oriented so that higher is better, speed) of each ok point with both values."""
    name = sweep.main_metric
    if name is None:
        return []
    sign = -1.0 if "loss" in name.lower() else 1.0
    out = []
    for p in sweep.points:
        q, s = p.metrics.get(name), p.metrics.get(SPEED)
        if p.status == "ok" and isinstance(q, float) and isinstance(s, float) and math.isfinite(q) and \
                math.isfinite(s):
            out.append((p, sign * q, s))
    return out


def has_speed(sweep: Any) -> bool:
    return bool(_scored(sweep))


def front(sweep: Any) -> list[Any]:
    """The Pareto-optimal points, fastest first."""
    scored = sorted(_scored(sweep), key=lambda t: (-t[2], -t[1]))
    out, best_q = [], -math.inf
    for p, q, _ in scored:
        if q > best_q:
            out.append(p)
            best_q = q
    return out


def fastest_within(sweep: Any, within: float) -> Any | None:
    """The fastest point whose quality is at most ``within`` below the best point's (None: no scored point)."""
    scored = _scored(sweep)
    if not scored:
        return None
    best = max(q for _, q, _ in scored)
    return max((t for t in scored if t[1] >= best - within - 1e-12), key=lambda t: t[2])[0]


def _where(sweep: Any, point: Any) -> str:
    return " ".join(f"{k}={point.overrides.get(k, '')}" for k in sweep.columns) or f"#{point.num}"


def lines(sweep: Any, best: str | None, within: float) -> list[str]:
    """The speed–quality summary: the front, and (``best="fastest"``) the chosen point with the reason."""
    if not has_speed(sweep):
        if best:
            raise CommandError(f"best={best} needs points with a {SPEED} metric: run `stpipe evaluate -m …` (it "
                               "measures throughput), then report its sweep directory")
        return []
    name = sweep.main_metric
    out = [f"speed–quality front ({SPEED} texts/s vs {name}):"]
    for p in front(sweep):
        out.append(f"  #{p.num} {_where(sweep, p)}  {SPEED}={p.metrics[SPEED]:.1f}  {name}={p.metrics[name]:.4f}")
    if best == "fastest":
        top = max(_scored(sweep), key=lambda t: t[1])[0]
        chosen = fastest_within(sweep, within)
        ratio = chosen.metrics[SPEED] / top.metrics[SPEED]
        out.append(f"deploy: #{chosen.num} {_where(sweep, chosen)} — the fastest point within {within:g} of the best "
                   f"{name} ({top.metrics[name]:.4f}, #{top.num}): {chosen.metrics[name]:.4f} at "
                   f"{chosen.metrics[SPEED]:.1f} texts/s ({ratio:.2f}× the best-quality point)")
    return out


def plot(sweep: Any, path: str | Path, best: str | None = None, within: float = 0.01) -> Path:
    """``path``: throughput (x) against quality (y), the front joined and marked, the chosen point starred."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise CommandError("no speed–quality chart: matplotlib is not installed; pip install 'stpipe[plot]'") from exc
    from stpipe.experiments.report import render_cell

    name = str(sweep.main_metric)
    scored = _scored(sweep)
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter([s for _, _, s in scored], [p.metrics[name] for p, _, _ in scored], color="tab:gray", label="point")
    pf = front(sweep)
    ax.plot([p.metrics[SPEED] for p in pf], [p.metrics[name] for p in pf], "o-", color="tab:blue",
            label="Pareto front")
    for p, _, s in scored:
        label = render_cell(_where(sweep, p), "term").replace("$", r"\$")
        ax.annotate(label, (s, p.metrics[name]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if best == "fastest":
        chosen = fastest_within(sweep, within)
        ax.scatter([chosen.metrics[SPEED]], [chosen.metrics[name]], marker="*", s=250, color="tab:red", zorder=3,
                   label=f"fastest within {within:g}")
    ax.set_xlabel(f"{SPEED} (texts/s)")
    ax.set_ylabel(name)
    ax.set_title(f"speed vs {name}")
    ax.legend(fontsize=8)
    out = Path(path)
    fig.savefig(out, format="png", dpi=100)
    return out
