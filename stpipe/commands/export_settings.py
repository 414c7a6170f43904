"""The export settings shared by ``stpipe export`` and ``stpipe evaluate``: ``quantize``, ``optimize`` and
``calibration`` (checked before any weight loads), the calibration texts, and the export cache of evaluate.

``stpipe evaluate … backend=onnx|openvino [quantize=…] [optimize=…]`` exports the model inside the job and
evaluates the export. Exports are cached in ``$STPIPE_EXPORT_CACHE`` (default ``~/.cache/stpipe/exports``) under
a key of everything the export depends on: the model definition, its weights (hashed), the format, quantize,
optimize and the calibration texts. One writer per key: a job takes an exclusive lock on ``KEY.lock`` (released by
the system if the job dies), checks again, exports atomically into ``KEY/`` and unlocks; a job racing it waits for
the lock and reuses the finished export.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from stpipe.errors import ConfigError, LoadError, Problem

TITLE = "invalid run settings"
CACHE_ENV = "STPIPE_EXPORT_CACHE"
#: calibration.data when unset: the STS Benchmark train split shipped with stpipe
DEFAULT_CALIBRATION = "stsb-train"


def _problem(key: str, message: str, hint: str) -> ConfigError:
    return ConfigError([Problem(code=f"run.{key}", path=tuple(key.split(".")), message=message, hint=hint)],
                       title=TITLE)


def check(run: Any, fmt: str | None, fmt_key: str) -> None:
    """ConfigError (exit 2) unless the export settings fit ``fmt`` (the graph format; ``fmt_key`` names the setting
    that chose it) and what they need is installed and readable."""
    quantize, optimize = run.get("quantize"), run.get("optimize")
    where = "format=onnx or format=openvino" if fmt_key == "format" else "backend=onnx or backend=openvino"
    for key, value in (("quantize", quantize), ("optimize", optimize)):
        if value is not None and fmt is None:
            raise _problem(key, f"{key}={value} needs a graph: the torch weights are not quantised or fused",
                           f"add {where}")
    if optimize is not None and fmt != "onnx":
        raise _problem("optimize", f"optimize={optimize} rewrites an ONNX Runtime graph; {fmt_key}={fmt} compiles "
                       "its own", f"use {fmt_key}=onnx, or leave optimize unset")
    if fmt is None:
        return
    from stpipe.runtimes import require

    needs = ["onnx", "onnxruntime"] + (["openvino"] if fmt == "openvino" else [])
    for module in needs:
        try:
            require(module)
        except LoadError as exc:
            raise _problem(fmt_key, str(exc).split("\n")[0], exc.hint or "") from None
    if quantize == "int8-static":
        if fmt == "openvino":
            from stpipe.runtimes.quantize import require_nncf

            try:
                require_nncf()
            except LoadError as exc:
                raise _problem("quantize", str(exc).split("\n")[0], exc.hint or "") from None
        calibration_texts(run)  # the file or data set exists and has texts


def calibration_texts(run: Any) -> list[str]:
    """The first ``calibration.samples`` distinct texts of ``calibration.data`` (see the run schema)."""
    node = run.get("calibration") or {}
    spec = node.get("data") or DEFAULT_CALIBRATION
    samples = node.get("samples") or 300
    path = Path(str(spec)).expanduser()
    if path.suffix not in (".yaml", ".yml") and (path.is_file() or path.suffix or "/" in str(spec)):
        texts = _file_texts(path)
    else:
        texts = _dataset_texts(str(spec))
    distinct = list(dict.fromkeys(t for t in texts if t.strip()))
    if not distinct:
        raise _problem("calibration.data", f"calibration={spec} holds no text", "give a file with one text a line")
    return distinct[:samples]


def _file_texts(path: Path) -> list[str]:
    if not path.is_file():
        raise _problem("calibration.data", f"calibration file '{path}' does not exist",
                       "calibration=FILE (UTF-8, one text a line) or the name of a data set of conf/data")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _problem("calibration.data", f"cannot read the calibration file '{path}': {exc}",
                       "save it as UTF-8 text, one text a line") from None


def _dataset_texts(name: str) -> list[str]:
    from stpipe.experiments.data import load_data_config, raise_problems
    from stpipe.experiments.readers import iter_sts

    config = load_data_config(name, base=("calibration", "data"))
    if config.evaluator != "sts":
        raise _problem("calibration.data", f"calibration data set '{name}' is a {config.evaluator} set; stpipe "
                       "calibrates on the sentences of an STS set", "calibration=stsb-train, or a text file")
    texts: list[str] = []
    for pair in raise_problems(iter_sts(config), config):
        texts += [pair.sentence1, pair.sentence2]
    return texts


# ============================================================================================== evaluate's cache
def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stpipe" / "exports"


def cache_key(pipe: Any, definition: Any, fmt: str, quantize: str | None, optimize: str | None,
              calibration: list[str] | None) -> str:
    """A hash of everything the export depends on (the weights included: a retrained model is a new key)."""
    import torch

    import stpipe

    h = hashlib.sha256()
    settings = {"format": fmt, "quantize": quantize, "optimize": optimize, "stpipe": stpipe.__version__,
                "definition": definition, "calibration": calibration if quantize == "int8-static" else None}
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, tensor in pipe.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:32]


def cached_export(pipe: Any, definition: Any, run: Any, fmt: str) -> tuple[Path, bool]:
    """The export directory of ``pipe`` for the run's settings (made now, or reused) and whether it was reused."""
    import fcntl

    from stpipe.formats.exported import export, is_exported

    quantize, optimize = run.get("quantize"), run.get("optimize")
    calibration = calibration_texts(run) if quantize == "int8-static" else None
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key(pipe, definition, fmt, quantize, optimize, calibration)
    target = root / key
    fd = os.open(root / f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one writer; a racing job waits here, then finds the export
        if is_exported(target):
            return target, True
        export(pipe, target, fmt, quantize=quantize, optimize=optimize, calibration=calibration, overwrite="model")
        return target, False
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
