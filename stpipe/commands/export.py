"""``stpipe export [MODEL] out=DIR``: write a model in sentence-transformers' format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stpipe.commands.common import each_job, in_job_dir, pipeline
from stpipe.errors import CommandError, LoadError


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    return each_job(model, overrides, flags, job, "export")


def job(composed: Any, job_dir: Path | None = None) -> dict[str, Any]:
    """Export once, or as one job of a sweep (``out=`` then goes into ``job_dir``). No metrics."""
    run_ = composed.run
    out = in_job_dir(run_.get("out"), job_dir)
    if not out:
        raise CommandError("usage: stpipe export [MODEL] out=DIR")
    pipe = pipeline(composed)
    try:
        pipe.save(out, overwrite=composed.run.get("overwrite") or "model")
    except OSError as exc:
        raise LoadError(f"cannot write the model: {exc.strerror}", path=out) from None
    print(f"saved {pipe.name or 'model'} in sentence-transformers format to {out}")
    return {"main_metric": None, "metrics": {}}
