"""Speed beside quality: ``stpipe evaluate`` measures the throughput of a model on the evaluation's own inputs.

:func:`recording` notes every ``encode`` call an evaluator makes (the evaluation itself is the warm-up);
:func:`measure` replays those calls, timed (up to 3 rounds, the fastest counted), with the run's ``batch_size`` /
``max_batch_tokens``, and returns texts per second; :func:`model_size_mb` is the size of what runs: the graph files
of an export, else the torch weights.
Throughput depends on the machine and its load: compare points of one sweep run on one machine, not runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Call = tuple[Any, tuple[Any, ...], dict[str, Any]]


@contextlib.contextmanager
def recording(pipe: Any) -> Iterator[list[Call]]:
    """Within the block, every ``pipe.encode(inputs, …)`` call (encode_query/encode_document included) is noted."""
    calls: list[Call] = []
    original = pipe.encode

    def encode(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((inputs, args, dict(kwargs)))
        return original(inputs, *args, **kwargs)

    object.__setattr__(pipe, "encode", encode)
    try:
        yield calls
    finally:
        object.__delattr__(pipe, "encode")


def measure(pipe: Any, calls: list[Call], *, batch_size: int | None = None, max_batch_tokens: int | None = None,
            rounds: int = 3, enough: float = 2.0) -> dict[str, float] | None:
    """``{"throughput": texts/s, "encode_seconds": s}``: the recorded ``calls`` replayed up to ``rounds`` times
    (stopping once ``enough`` seconds are spent), the fastest round counted — the least disturbed by other work.
    None when no text was encoded."""
    count = sum(1 if isinstance(inputs, str) else len(inputs) for inputs, _, _ in calls)
    if not count:
        return None
    best, spent = float("inf"), 0.0
    for _ in range(rounds):
        seconds = 0.0
        for inputs, args, kwargs in calls:
            kw = {**kwargs, "show_progress_bar": False}
            if batch_size is not None:
                kw["batch_size"] = batch_size
            if max_batch_tokens is not None:
                kw["max_batch_tokens"] = max_batch_tokens
            t0 = time.perf_counter()
            pipe.encode(inputs, *args, **kw)
            seconds += time.perf_counter() - t0
        best, spent = min(best, seconds), spent + seconds
        if spent >= enough:
            break
    return {"throughput": round(count / best, 2), "encode_seconds": round(best, 4)}


def model_size_mb(pipe: Any) -> float:
    """Megabytes of what runs: each graph file (OpenVINO: .xml and .bin) plus any torch parameters and buffers."""
    total = 0
    for module in pipe.modules():
        path = getattr(getattr(module, "session", None), "path", None)
        if path is not None:
            files = [Path(path), Path(path).with_suffix(".bin")] if Path(path).suffix == ".xml" else [Path(path)]
            total += sum(f.stat().st_size for f in files if f.is_file())
    for tensor in [*pipe.parameters(), *pipe.buffers()]:
        total += tensor.numel() * tensor.element_size()
    return round(total / 1e6, 3)
