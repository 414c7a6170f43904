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

from pathlib import Path
from typing import Any

from stpipe.commands.common import apply_threads, each_job, in_job_dir
from stpipe.config.run import OUTPUT_SUFFIXES
from stpipe.errors import CommandError


def write_output(emb: Any, output: str) -> tuple[tuple[int, ...], str]:
    """Write in-memory embeddings (``Pipeline.encode``'s result) to ``.npy`` (an (N, D) array), ``.jsonl`` (one
    embedding per line; a sparse embedding as ``{"indices": [...], "values": [...]}`` of its non-zero dimensions)
    or ``.parquet`` (``id``, ``embedding`` / ``indices``, ``values``) — the formats of ``stpipe encode``. Atomic:
    a temporary file next to ``output`` is renamed into place; any OS error is a :class:`CommandError` naming the
    file."""
    from stpipe.corpus.runner import to_result
    from stpipe.corpus.writers import Sparse, write_chunk

    result = to_result(emb)
    target = Path(output)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_chunk(result, list(range(len(result))), target, with_ids=False)
    except OSError as exc:
        raise CommandError(f"output '{output}': cannot write it: {exc.strerror or exc}") from None
    if isinstance(result, Sparse):
        return (len(result), result.dim), "sparse float32"
    return tuple(result.shape), str(result.dtype)


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
    apply_threads(run_.get("threads"))  # workers=N split this count between them
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
