"""``stpipe export [MODEL] out=DIR [format=onnx|openvino] [quantize=int8]``: write a model in sentence-transformers'
format, or (``format=``) as one graph of the whole pipeline for ONNX Runtime / OpenVINO
(:mod:`stpipe.formats.exported`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stpipe.commands.common import each_job, in_job_dir, pipeline
from stpipe.errors import CommandError, ConfigError, LoadError, Problem


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    return each_job(model, overrides, flags, job, "export")


def check(composed: Any) -> None:
    """Before any weight loads: ``quantize`` needs a graph ``format``, and the format's runtime is installed."""
    run_ = composed.run
    fmt, quantize = run_.get("format"), run_.get("quantize")
    if quantize is not None and fmt is None:
        raise ConfigError([Problem(code="run.quantize", path=("quantize",), message=f"quantize={quantize} needs a "
                                   "graph format: the sentence-transformers format keeps the torch weights",
                                   hint="add format=onnx or format=openvino")], title="invalid run settings")
    if fmt is not None:
        from stpipe.runtimes import require

        needs = ["onnx", "onnxruntime"] + (["openvino"] if fmt == "openvino" else [])
        for module in needs:
            try:
                require(module)
            except LoadError as exc:
                raise ConfigError([Problem(code="run.format", path=("format",), message=str(exc).split("\n")[0],
                                           hint=exc.hint)], title="invalid run settings") from None


def job(composed: Any, job_dir: Path | None = None) -> dict[str, Any]:
    """Export once, or as one job of a sweep (``out=`` then goes into ``job_dir``). No metrics."""
    run_ = composed.run
    out = in_job_dir(run_.get("out"), job_dir)
    if not out:
        raise CommandError("usage: stpipe export [MODEL] out=DIR [format=onnx|openvino] [quantize=int8]")
    pipe = pipeline(composed)
    fmt = run_.get("format")
    overwrite = run_.get("overwrite") or "model"
    if fmt is not None:
        from stpipe.exports import export

        export(pipe, out, fmt, quantize=run_.get("quantize"), overwrite=overwrite)
        what = f"{fmt} graph{' (int8)' if run_.get('quantize') else ''} of the whole pipeline"
        print(f"saved {pipe.name or 'model'} as one {what} to {out}")
        return {"main_metric": None, "metrics": {}}
    try:
        pipe.save(out, overwrite=overwrite)
    except OSError as exc:
        raise LoadError(f"cannot write the model: {exc.strerror}", path=out) from None
    print(f"saved {pipe.name or 'model'} in sentence-transformers format to {out}")
    return {"main_metric": None, "metrics": {}}
