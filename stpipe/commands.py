"""The verbs of the ``stpipe`` command (argument parsing lives in :mod:`stpipe.cli`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from stpipe.config.run import OUTPUT_SUFFIXES
from stpipe.errors import CommandError, ConfigError, LoadError, StpipeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


# --------------------------------------------------------------------------- model resolution
def _compose(model: str | None, overrides: list[str], verb: str = "validate"):
    """The composed (and checked) run configuration and model definition — a saved model directory becomes a
    definition in compose(), so `model.*` overrides apply to it like to a YAML file — plus, for ``verb``, the
    run settings' needs from the machine (inputs file, output suffix, device)."""
    from stpipe.config.compose import compose
    from stpipe.config.run import run_file_problems

    composed = compose(model, overrides)
    problems = run_file_problems(composed.run, verb, composed.run_sources)
    if problems:
        raise ConfigError(problems, title="invalid run settings")
    return composed


def _pipeline(composed):
    from transformers.utils import logging as hf_logging

    from stpipe.builder import build

    hf_logging.disable_progress_bar()  # the CLI prints its own one-line summary
    from stpipe.config.validate import validate

    definition = validate(composed.definition, sources=composed.sources, base_dir=composed.base_dir)
    run = composed.run
    return build(definition, validate=False, base_dir=composed.base_dir, device=run.get("device"),
                 trust_remote_code=run.get("trust_remote_code") or None, allow_pickle=bool(run.get("allow_pickle")))


# --------------------------------------------------------------------------- inputs and outputs
def _open_image(path: str, where: str):
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise CommandError(f"{where}: cannot open image '{path}': {exc}") from None


def _is_image_path(s: str, base: Path) -> bool:
    return s.lower().endswith(IMAGE_SUFFIXES) and (base / s).is_file()


def read_inputs(inputs: str | None) -> list[Any]:
    """Texts, images and text+image records from a file (or stdin when ``inputs`` is None or '-')."""
    if inputs in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise CommandError("no inputs: give inputs=FILE (one input per line, or .jsonl) or pipe text to stdin")
        lines, base, name = sys.stdin.read().splitlines(), Path.cwd(), "<stdin>"
    else:
        path = Path(inputs)
        if not path.is_file():
            raise CommandError(f"inputs file '{inputs}' does not exist")
        lines, base, name = path.read_text(encoding="utf-8").splitlines(), path.parent, str(path)
    out: list[Any] = []
    jsonl = name.endswith(".jsonl")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{n}"
        if jsonl:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CommandError(f"{where}: invalid JSON ({exc.msg})") from None
            out.append(_record(rec, base, where))
        elif _is_image_path(line.strip(), base):
            out.append(_open_image(str(base / line.strip()), where))
        else:
            out.append(line)
    if not out:
        raise CommandError(f"{name}: no inputs found")
    return out


def _record(rec: Any, base: Path, where: str) -> Any:
    if isinstance(rec, str):
        return rec
    if not isinstance(rec, dict) or not rec:
        raise CommandError(f"{where}: expected a string or an object like {{\"text\": ..., \"image\": \"path\"}}")
    unknown = set(rec) - {"text", "image"}
    if unknown:
        raise CommandError(f"{where}: unknown key(s) {sorted(unknown)}; records may have 'text' and 'image'")
    if "text" in rec and not isinstance(rec["text"], str):
        raise CommandError(f"{where}: 'text' must be a string, found {json.dumps(rec['text'])}")
    if "image" in rec and (not isinstance(rec["image"], str) or not rec["image"].strip()):
        raise CommandError(f"{where}: 'image' must be an image file path (relative to the inputs file), found "
                           f"{json.dumps(rec['image'])}")
    out = dict(rec)
    if "image" in out:
        out["image"] = _open_image(str(base / out["image"]), where)
    return out["text"] if list(out) == ["text"] else out


def write_output(emb: Any, output: str) -> tuple[tuple[int, ...], str]:
    """Write embeddings to ``.npy`` (an (N, D) array) or ``.jsonl`` (one embedding per line; a sparse
    embedding as ``{"indices": [...], "values": [...]}`` of its non-zero dimensions)."""
    import numpy as np
    import torch

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    if isinstance(emb, torch.Tensor) and emb.is_sparse and output.endswith(".jsonl"):
        emb = emb.coalesce().cpu()
        idx, val = emb.indices(), emb.values().float()
        with open(output, "w", encoding="utf-8") as fh:
            for row in range(emb.shape[0]):
                keep = idx[0] == row
                fh.write(json.dumps({"indices": idx[1][keep].tolist(), "values": val[keep].tolist()}) + "\n")
        return tuple(emb.shape), f"sparse {str(emb.dtype).removeprefix('torch.')}"
    if isinstance(emb, torch.Tensor):
        emb = emb.to_dense() if emb.is_sparse else emb
        emb = emb.float().cpu().numpy()
    arr = np.asarray(emb)
    if output.endswith(".npy"):
        np.save(output, arr)
    else:
        with open(output, "w", encoding="utf-8") as fh:
            for row in arr:
                fh.write(json.dumps([float(x) for x in row]) + "\n")
    return tuple(arr.shape), str(arr.dtype)


# --------------------------------------------------------------------------- verbs
def _sweep(model: str | None, overrides: list[str], verb: str = "validate") -> list[tuple[list[str], Any]]:
    """Every point of a Hydra sweep (``-m``), composed and validated — model definition, run settings and, for
    ``verb``, what they need from the machine — before the first job runs; if any point is invalid, all failing
    points are listed with their overrides and nothing runs (exit 2)."""
    from dataclasses import replace

    from stpipe.config.compose import sweep_points
    from stpipe.config.run import run_file_problems

    points = sweep_points(model, overrides)
    for i, (point, composed) in enumerate(points):
        if isinstance(composed, ConfigError):
            continue
        problems = run_file_problems(composed.run, verb, composed.run_sources)
        if problems:
            label = f"sweep point {i} ({' '.join(o for o in point if o not in overrides)})"
            points[i] = (point, ConfigError([replace(p, source=f"{label}; {p.source}" if p.source else label)
                                             for p in problems], title=f"invalid run settings ({label})"))
    failing = [(i, p, c) for i, (p, c) in enumerate(points) if isinstance(c, ConfigError)]
    for i, (point, composed) in enumerate(points):
        point = [o for o in point if o not in overrides]  # what this point sweeps
        if isinstance(composed, ConfigError):
            print(f"FAIL  sweep point {i}: {' '.join(point)}\n"
                  + "\n".join("      " + ln for ln in composed.render().splitlines()), file=sys.stderr)
        else:
            print(f"ok    sweep point {i}: {' '.join(point)}")
    print(f"{len(points) - len(failing)} of {len(points)} sweep points valid", file=sys.stderr if failing else None)
    if failing:
        raise SweepInvalid(f"{len(failing)} of {len(points)} sweep points are invalid; no job was started")
    return points


class SweepInvalid(StpipeError):
    pass


def _each_job(model: str | None, overrides: list[str], flags: set[str], job, verb: str) -> int:
    if "--multirun" not in flags:
        job(_compose(model, overrides, verb), None)
        return 0
    points = _sweep(model, overrides, verb)
    for i, (point, composed) in enumerate(points):
        print(f"[{i}] {' '.join(o for o in point if o not in overrides)}")
        job(composed, i)
    return 0


def _with_index(path: str | None, index: int | None) -> str | None:
    if path is None or index is None:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}.{index}{p.suffix}")) if p.suffix else str(p / str(index))


def cmd_encode(model: str | None, overrides: list[str], flags: set[str]) -> int:
    return _each_job(model, overrides, flags, _encode, "encode")


def _encode(composed: Any, index: int | None) -> None:
    run = composed.run
    output = _with_index(run.get("output"), index)
    if output and not output.endswith(OUTPUT_SUFFIXES):  # checked with the run settings; kept for API callers
        raise CommandError(f"output '{output}': use a .npy or .jsonl file name")
    texts = read_inputs(run.get("inputs"))
    t0 = time.perf_counter()
    pipe = _pipeline(composed)
    kwargs: dict[str, Any] = {k: run[k] for k in ("batch_size", "normalize_embeddings", "truncate_dim",
                                                   "precision", "prompt_name", "prompt", "task", "modality")
                              if run.get(k) is not None}
    kwargs["show_progress_bar"] = bool(run.get("show_progress_bar"))
    try:
        emb = pipe.encode(texts, **kwargs)
    except ValueError as exc:  # e.g. no route for the given task, unknown prompt name
        raise CommandError(str(exc)) from None
    seconds = time.perf_counter() - t0
    if output:
        shape, dtype = write_output(emb, output)
    else:
        shape, dtype = tuple(getattr(emb, "shape", (len(emb),))), str(getattr(emb, "dtype", ""))
    dest = f" -> {output}" if output else " (no output= given, nothing written)"
    print(f"encoded {len(texts)} input{'s' if len(texts) != 1 else ''} with {pipe.name or 'model'}: "
          f"shape {shape}, {dtype}{dest} in {seconds:.2f}s")


def cmd_validate(model: str | None, overrides: list[str], flags: set[str]) -> int:
    from stpipe.config.validate import inspect_definition

    if "--multirun" in flags:
        _sweep(model, overrides)
        return 0
    composed = _compose(model, overrides)
    report = inspect_definition(composed.definition, sources=composed.sources, base_dir=composed.base_dir)
    if report.errors:
        raise ConfigError(report.problems)
    for p in report.warnings:  # printed here, as a short report (not through Python's warnings machinery)
        print(p.render(), file=sys.stderr)
    print(f"ok: {model or composed.definition.get('name') or 'the model'} is a valid model definition"
          + (f" ({len(report.warnings)} warning{'s' if len(report.warnings) != 1 else ''})" if report.warnings
             else ""))
    if "--explain" in flags:
        from stpipe.config.validate import explain

        print("\n# resolved configuration")
        print(yaml.safe_dump(composed.definition, sort_keys=False).rstrip())
        print("\n" + explain(composed.definition, base_dir=composed.base_dir))
    return 0


def cmd_schema(model: str | None, overrides: list[str], flags: set[str]) -> int:
    from stpipe.config.schema import combined_schema

    print(json.dumps(combined_schema(), indent=2))
    return 0


def cmd_import(model: str | None, overrides: list[str], flags: set[str]) -> int:
    from stpipe.formats.st import to_definition

    if model is None:
        raise CommandError("usage: stpipe import DIR  (DIR: a model saved in sentence-transformers' format)")
    if not Path(model).is_dir():
        what = "is a file, not a directory" if Path(model).exists() else "does not exist"
        raise CommandError(f"'{model}' {what}; stpipe import reads a directory saved in sentence-transformers' "
                           "format (modules.json, config files and weights)")
    definition = to_definition(model)
    print("# yaml-language-server: $schema=" + _schema_url())
    print(f"# imported from {Path(model).resolve()} by `stpipe import`")
    print(yaml.safe_dump(definition, sort_keys=False).rstrip())
    return 0


def cmd_export(model: str | None, overrides: list[str], flags: set[str]) -> int:
    return _each_job(model, overrides, flags, _export, "export")


def _export(composed: Any, index: int | None) -> None:
    out = _with_index(composed.run.get("out"), index)
    if not out:
        raise CommandError("usage: stpipe export [MODEL] out=DIR")
    pipe = _pipeline(composed)
    try:
        pipe.save(out, overwrite=composed.run.get("overwrite") or "model")
    except OSError as exc:
        raise LoadError(f"cannot write the model: {exc.strerror}", path=out) from None
    print(f"saved {pipe.name or 'model'} in sentence-transformers format to {out}")


def _schema_url() -> str:
    from stpipe.resources import schemas_dir

    return (schemas_dir() / "pipeline.schema.json").resolve().as_uri()
