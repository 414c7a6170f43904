"""``stpipe encode [MODEL] inputs=FILE output=OUT.npy|OUT.jsonl|OUT.parquet``: embed inputs and write them.

The work is :mod:`stpipe.corpus`'s: the inputs (``.txt``, ``.jsonl``, ``.csv``/``.tsv`` with ``inputs.column=``,
Parquet) are pre-scanned — checked and counted — before the model loads, then streamed in chunks of
``chunk_size`` rows, each committed to a partial output that a rerun of the same command resumes; the finished
output is joined into a temporary file next to the target and renamed, so a failed write (a full disk) or a
killed run never leaves a half-written file under the output's name. ``workers=N``, ``engine=ray`` and
``shard.index=i shard.count=N`` spread the chunks over processes, a Ray cluster or separate jobs. A line of a
text file that names an existing image file is an image when the model takes images, else the text itself — as
``Pipeline.encode`` treats such a string. :func:`write_output` writes an in-memory result (for API callers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stpipe.commands.common import each_job, in_job_dir
from stpipe.config.run import OUTPUT_SUFFIXES
from stpipe.errors import CommandError


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
    :func:`~stpipe.commands.common.in_job_dir`; with ``shard.count`` > 1 an absolute output keeps its name, the
    shard's number makes it unique). Streams the inputs chunk by chunk (:mod:`stpipe.corpus`).
    Metrics: ``dimension`` and ``inputs`` (no main metric)."""
    from stpipe.corpus.runner import encode_corpus

    run_ = composed.run
    sharded = int((run_.get("shard") or {}).get("count") or 1) > 1
    output = run_.get("output")
    if not (sharded and output and Path(output).is_absolute()):
        output = in_job_dir(output, job_dir)
    if output and not output.endswith(OUTPUT_SUFFIXES):  # checked with the run settings; kept for API callers
        raise CommandError(f"output '{output}': use a .npy, .jsonl or .parquet file name")
    r = encode_corpus(composed, output)
    shape, rows = r["shape"], r["rows"]
    dest = f" -> {r['target']}" if output else " (no output= given, nothing written)"
    resumed = f" (resumed after chunk {r['resumed']}: encoded {r['encoded_chunks']} of {r['chunks']} chunks)" \
        if r["resumed"] else ""
    name = composed.definition.get("name") if isinstance(composed.definition, dict) else None
    print(f"encoded {rows} input{'s' if rows != 1 else ''} with {name or 'model'}: "
          f"shape {shape}, {r['dtype']}{dest} in {r['seconds']:.2f}s{resumed}")
    return {"main_metric": None, "metrics": {"dimension": float(shape[-1]) if len(shape) > 1 else 0.0,
                                             "inputs": float(rows)}}
