"""``stpipe export [MODEL] out=DIR [format=onnx|openvino] [quantize=int8|int8-static] [optimize=O1|O2|O3]
[calibration=DATA] [calibration.samples=N]``: write a model in sentence-transformers' format, or (``format=``) as
one graph of the whole pipeline for ONNX Runtime / OpenVINO (:mod:`stpipe.formats.exported`); the export settings
are checked by :mod:`stpipe.commands.export_settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stpipe.commands import export_settings
from stpipe.commands.common import each_job, in_job_dir, pipeline
from stpipe.errors import CommandError, LoadError

USAGE = ("usage: stpipe export [MODEL] out=DIR [format=onnx|openvino] [quantize=int8|int8-static] "
         "[optimize=O1|O2|O3] [calibration=DATA|FILE] [calibration.samples=N]")


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    return each_job(model, overrides, flags, job, "export")


def check(composed: Any) -> None:
    """Before any weight loads: ``quantize``/``optimize`` need a graph ``format``, the format's runtime (and NNCF
    for OpenVINO static int8) is installed, and the calibration texts can be read."""
    export_settings.check(composed.run, composed.run.get("format"), "format")


def job(composed: Any, job_dir: Path | None = None) -> dict[str, Any]:
    """Export once, or as one job of a sweep (``out=`` then goes into ``job_dir``). No metrics."""
    run_ = composed.run
    out = in_job_dir(run_.get("out"), job_dir)
    if not out:
        raise CommandError(USAGE)
    pipe = pipeline(composed)
    fmt = run_.get("format")
    overwrite = run_.get("overwrite") or "model"
    if fmt is not None:
        from stpipe.formats.exported import export

        quantize, optimize = run_.get("quantize"), run_.get("optimize")
        calibration = export_settings.calibration_texts(run_) if quantize == "int8-static" else None
        export(pipe, out, fmt, quantize=quantize, overwrite=overwrite, optimize=optimize, calibration=calibration)
        what = f"{fmt} graph{f' ({quantize})' if quantize else ''}{f' optimised {optimize}' if optimize else ''}"
        print(f"saved {pipe.name or 'model'} as one {what} of the whole pipeline to {out}")
        return {"main_metric": None, "metrics": {}}
    try:
        pipe.save(out, overwrite=overwrite)
    except OSError as exc:
        raise LoadError(f"cannot write the model: {exc.strerror}", path=out) from None
    print(f"saved {pipe.name or 'model'} in sentence-transformers format to {out}")
    return {"main_metric": None, "metrics": {}}
