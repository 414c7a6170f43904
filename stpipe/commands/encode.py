"""``stpipe encode [MODEL] inputs=FILE output=OUT.npy|OUT.jsonl``: embed inputs and write them.

Inputs are read (and checked: UTF-8, JSON records) and the output path is checked before the model loads. A line
of a text file that names an existing image file is an image when the model takes images, else the text itself —
as ``Pipeline.encode`` treats such a string. The output is written to a temporary file next to it and renamed, so
a failed write (a full disk) leaves no half-written file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from stpipe.commands.common import each_job, in_job_dir, pipeline
from stpipe.config.run import OUTPUT_SUFFIXES
from stpipe.errors import CommandError
from stpipe.modules.modality import IMAGE_SUFFIXES


class ImagePath(str):
    """A line of an inputs file that names an existing image file; ``file`` is that file."""

    file: Path


def _open_image(path: str | Path, where: str) -> Any:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise CommandError(f"{where}: cannot open image '{path}': {exc}") from None


def _lines(inputs: str | None) -> tuple[list[str], Path, str]:
    if inputs in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise CommandError("no inputs: give inputs=FILE (one input per line, or .jsonl) or pipe text to stdin")
        try:
            return sys.stdin.read().splitlines(), Path.cwd(), "<stdin>"
        except UnicodeDecodeError as exc:
            raise CommandError(f"<stdin>: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                               f"{exc.start})") from None
    path = Path(inputs)
    if not path.is_file():
        raise CommandError(f"inputs file '{inputs}' does not exist")
    try:
        return path.read_text(encoding="utf-8").splitlines(), path.parent, str(path)
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise CommandError(f"{path}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save the inputs "
                           "file as UTF-8") from None
    except OSError as exc:
        raise CommandError(f"inputs file '{inputs}': cannot read it: {exc.strerror or exc}") from None


def read_inputs(inputs: str | None) -> list[Any]:
    """Texts, image paths (:class:`ImagePath`) and text+image records from a file (stdin for None or '-')."""
    lines, base, name = _lines(inputs)
    out: list[Any] = []
    jsonl = name.endswith(".jsonl")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{n}"
        if jsonl:
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                raise CommandError(f"{where}: invalid JSON ({why})") from None
            out.append(_record(rec, base, where))
        elif line.strip().lower().endswith(IMAGE_SUFFIXES) and (base / line.strip()).is_file():
            item = ImagePath(line)
            item.file = base / line.strip()
            out.append(item)
        else:
            out.append(line)
    if not out:
        raise CommandError(f"{name}: no inputs found")
    return out


def open_images(items: list[Any], takes_images: bool) -> list[Any]:
    """Image path lines opened as images when the model takes images; otherwise they stay text."""
    return [(_open_image(x.file, str(x.file)) if takes_images else str(x)) if isinstance(x, ImagePath) else x
            for x in items]


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


def _write(emb: Any, fh: Any, output: str) -> tuple[tuple[int, ...], str]:
    import numpy as np
    import torch

    if isinstance(emb, torch.Tensor) and emb.is_sparse and output.endswith(".jsonl"):
        emb = emb.coalesce().cpu()
        idx, val = emb.indices(), emb.values().float()
        for row in range(emb.shape[0]):
            keep = idx[0] == row
            fh.write((json.dumps({"indices": idx[1][keep].tolist(), "values": val[keep].tolist()}) + "\n").encode())
        return tuple(emb.shape), f"sparse {str(emb.dtype).removeprefix('torch.')}"
    if isinstance(emb, torch.Tensor):
        emb = emb.to_dense() if emb.is_sparse else emb
        emb = emb.float().cpu().numpy()
    arr = np.asarray(emb)
    if output.endswith(".npy"):
        np.save(fh, arr)
    else:
        for row in arr:
            fh.write((json.dumps([float(x) for x in row]) + "\n").encode())
    return tuple(arr.shape), str(arr.dtype)


def write_output(emb: Any, output: str) -> tuple[tuple[int, ...], str]:
    """Write embeddings to ``.npy`` (an (N, D) array) or ``.jsonl`` (one embedding per line; a sparse
    embedding as ``{"indices": [...], "values": [...]}`` of its non-zero dimensions). Atomic: a temporary file
    next to ``output`` is renamed into place; any OS error is a :class:`CommandError` naming the file."""
    target = Path(output)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            result = _write(emb, fh, output)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CommandError(f"output '{output}': cannot write it: {exc.strerror or exc}") from None
    return result


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    return each_job(model, overrides, flags, job, "encode")


def job(composed: Any, job_dir: Path | None = None) -> dict[str, Any]:
    """Encode once (``job_dir`` None) or as one job of a sweep (``output=`` then goes into ``job_dir``, see
    :func:`~stpipe.commands.common.in_job_dir`). Metrics: ``dimension`` and ``inputs`` (no main metric)."""
    run_ = composed.run
    output = in_job_dir(run_.get("output"), job_dir)
    if output and not output.endswith(OUTPUT_SUFFIXES):  # checked with the run settings; kept for API callers
        raise CommandError(f"output '{output}': use a .npy or .jsonl file name")
    items = read_inputs(run_.get("inputs"))
    t0 = time.perf_counter()
    pipe = pipeline(composed)
    texts = open_images(items, pipe.supports("image"))
    kwargs: dict[str, Any] = {k: run_[k] for k in ("batch_size", "max_batch_tokens", "normalize_embeddings",
                                                    "truncate_dim", "precision", "prompt_name", "prompt", "task",
                                                    "modality")
                              if run_.get(k) is not None}
    kwargs["show_progress_bar"] = bool(run_.get("show_progress_bar"))
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
    return {"main_metric": None, "metrics": {"dimension": float(shape[-1]) if len(shape) > 1 else 0.0,
                                             "inputs": float(len(texts))}}
