"""``stpipe export [MODEL] out=DIR``: write a model in sentence-transformers' format."""

from __future__ import annotations

from typing import Any

from stpipe.commands.common import each_job, pipeline, with_index
from stpipe.errors import CommandError, LoadError


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    return each_job(model, overrides, flags, _export, "export")


def _export(composed: Any, index: int | None) -> None:
    run_ = composed.run
    out = with_index(run_.get("out"), index)
    if not out:
        raise CommandError("usage: stpipe export [MODEL] out=DIR")
    pipe = pipeline(composed)
    try:
        pipe.save(out, overwrite=composed.run.get("overwrite") or "model")
    except OSError as exc:
        raise LoadError(f"cannot write the model: {exc.strerror}", path=out) from None
    print(f"saved {pipe.name or 'model'} in sentence-transformers format to {out}")
