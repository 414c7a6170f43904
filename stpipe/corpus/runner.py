"""The chunk loop of ``stpipe encode``: pre-scan, validate once, encode chunk by chunk, commit, resume, join.

:func:`encode_corpus` is what :func:`stpipe.commands.encode.job` runs. In order: the inputs are checked and
counted (:func:`stpipe.corpus.readers.open_source`; a bad line fails here, before any weight loads), the model
definition is validated once, the partial output is opened (:class:`stpipe.corpus.partial.Partial`: a rerun of
the same command continues after the last committed chunk), then the chunks not done yet are encoded — in this
process (``workers=1``), by N processes (``workers=N``, :mod:`stpipe.corpus.workers`) or by a Ray actor pool
(``engine=ray``, :mod:`stpipe.corpus.ray_engine`) — and committed in input order. Each chunk is encoded by its
own ``Pipeline.encode`` call with the same ``batch_size``, so the batches of a chunk do not depend on what ran
before it: a resumed, sharded or parallel run gives the same rows as one uninterrupted run. A line found bad
only mid-stream (an image that does not open) stops the run with its line number; the chunks before it stay
committed for a rerun.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stpipe.config.run import show_progress
from stpipe.corpus.lines import DEFAULT_MAX_CHARS
from stpipe.corpus.readers import ImagePath, InputChanged, Source, open_source
from stpipe.corpus.writers import Sparse
from stpipe.errors import CommandError
from stpipe.modules.image_limits import DEFAULT_MAX_PIXELS, set_max_image_pixels

ENGINES = ("local", "ray")
"""``engine=``: this machine (``workers=N`` processes) or a Ray actor pool (the schema's enum is this)."""

ENCODE_KEYS = ("batch_size", "max_batch_tokens", "normalize_embeddings", "truncate_dim", "precision", "prompt_name",
               "prompt", "task", "modality")
DEFAULT_CHUNK_SIZE = 10_000


def encode_kwargs(run: Any) -> dict[str, Any]:
    return {k: run[k] for k in ENCODE_KEYS if run.get(k) is not None}


def _open_image(path: str | Path, where: str) -> Any:
    from stpipe.modules.image_limits import open_rgb

    try:
        return open_rgb(path)  # refused before decoding above max_image_pixels
    except (OSError, ValueError) as exc:
        raise CommandError(f"{where}: cannot open image '{path}': {exc}") from None


def prepare(items: list[Any], takes_images: bool) -> list[Any]:
    """Image paths opened as images when the model takes images (otherwise a path line stays text)."""
    out = []
    for x in items:
        if isinstance(x, ImagePath):
            x = _open_image(x.file, x.where) if takes_images else str(x)
        elif isinstance(x, dict) and isinstance(x.get("image"), ImagePath):
            x = {**x, "image": _open_image(x["image"].file, x["image"].where)}
        out.append(x)
    return out


def to_result(emb: Any) -> Any:
    """``Pipeline.encode``'s output as a dense numpy array or a :class:`Sparse`."""
    import numpy as np
    import torch

    if isinstance(emb, torch.Tensor) and emb.is_sparse:
        emb = emb.coalesce().cpu()
        rows, cols = emb.indices()
        offsets = np.zeros(emb.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows.numpy(), minlength=emb.shape[0]), out=offsets[1:])
        return Sparse(cols.numpy().astype(np.int64), emb.values().float().numpy(), offsets, int(emb.shape[1]))
    if isinstance(emb, torch.Tensor):
        emb = emb.float().cpu().numpy()
    return np.ascontiguousarray(np.asarray(emb))


def encode_chunk(pipe: Any, items: list[Any], kwargs: dict[str, Any]) -> Any:
    try:
        emb = pipe.encode(prepare(items, pipe.supports("image")), show_progress_bar=False, **kwargs)
    except ValueError as exc:  # e.g. no route for the given task, unknown prompt name
        raise CommandError(str(exc)) from None
    return refuse_non_finite(to_result(emb), items)


def refuse_non_finite(result: Any, items: list[Any]) -> Any:
    """``result`` unless some embedding holds NaN or ±inf (a model trained into NaN): then a CommandError naming
    the inputs — such rows are never written as a normal result."""
    import numpy as np

    if isinstance(result, Sparse):
        bad_values = ~np.isfinite(result.values)
        rows = np.searchsorted(result.offsets, np.nonzero(bad_values)[0], side="right") - 1
    else:
        finite = np.isfinite(result) if result.dtype.kind == "f" else np.ones(result.shape, dtype=bool)
        rows = np.nonzero(~finite.reshape(len(result), -1).all(axis=1))[0] if result.ndim else np.zeros(0, int)
    if len(rows) == 0:
        return result
    rows = sorted(set(int(r) for r in rows))
    first = ", ".join(f"{r} ({str(items[r])[:40]!r})" for r in rows[:3])
    raise CommandError(f"the model produced non-finite embeddings (NaN or inf) for {len(rows)} of {len(items)} inputs "
                       f"of this chunk (input {first}): nothing is written. The model's weights are probably broken "
                       "(e.g. a training run that diverged); check it with `stpipe evaluate` or retrain it")


def build_kwargs(composed: Any) -> dict[str, Any]:
    run = composed.run
    return {"base_dir": None if composed.base_dir is None else str(composed.base_dir), "device": run.get("device"),
            "trust_remote_code": run.get("trust_remote_code") or None, "allow_pickle": bool(run.get("allow_pickle")),
            "max_image_pixels": run.get("max_image_pixels", DEFAULT_MAX_PIXELS)}


def build_pipeline(definition: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    """A Pipeline from the definition the parent validated (no second validation)."""
    from transformers.utils import logging as hf_logging

    from stpipe.builder import build

    hf_logging.disable_progress_bar()
    kwargs = dict(kwargs)
    set_max_image_pixels(kwargs.pop("max_image_pixels", DEFAULT_MAX_PIXELS))  # also in spawned workers
    return build(definition, validate=False, **kwargs)


def job_key(definition: Any, run: Any, src: Source, output: Path) -> str:
    """What decides the bytes of the output: a partial output is resumed only under the same key — the model
    definition, the encode settings, the inputs' fingerprint (size, mtime, SHA-256 of what the run reads) and the
    chunking."""
    spec = src.spec
    ident: dict[str, Any] = {"path": spec.path, "column": spec.column, "id_column": spec.id_column,
                             **src.fingerprint}
    payload = {"definition": definition, "encode": encode_kwargs(run), "inputs": ident,
               "rows": [src.start, src.stop, src.chunk_size], "format": output.suffix, "version": 2}
    return _sha(payload)


def _sha(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def shard_info(definition: Any, run: Any, src: Source, output: Path, shard: tuple[int, int]) -> dict[str, Any]:
    """What a shard's manifest records so that ``stpipe merge`` joins only shards of one model, one set of
    settings and one input (:func:`stpipe.corpus.merge.write_shard_manifest`)."""
    return {"index": shard[0], "count": shard[1], "model": _sha(definition),
            "settings": _sha({"encode": encode_kwargs(run), "chunk_size": src.chunk_size, "format": output.suffix}),
            "inputs": {"rows": src.total, "size": src.stat[0], "column": src.spec.column,
                       "id_column": src.spec.id_column}}


def warn(msg: str) -> None:
    print(f"stpipe encode: warning: {msg}", file=sys.stderr, flush=True)


def settings(run: Any, log: Callable[[str], None] = warn) -> dict[str, Any]:
    shard = run.get("shard") or {}
    index, count = int(shard.get("index") or 0), int(shard.get("count") or 1)
    if not 0 <= index < count:
        raise CommandError(f"shard.index={index} is not one of 0 … {count - 1} (shard.count={count})")
    engine = run.get("engine") or "local"
    return {"chunk_size": int(run.get("chunk_size") or DEFAULT_CHUNK_SIZE), "engine": engine,
            "workers": capped_workers(int(run.get("workers") or 1), run.get("max_workers"), engine, log),
            "shard": (index, count), "ray": dict(run.get("ray") or {}),
            "max_chars": int(run.get("max_input_chars") or DEFAULT_MAX_CHARS)}


def capped_workers(workers: int, max_workers: int | None, engine: str, log: Callable[[str], None]) -> int:
    """``workers=N`` of the local engine, at most what the machine can run (:func:`stpipe.hardware.machine_workers`)
    — or at most ``max_workers``, when the user sets that cap explicitly. Ray's actors run on the cluster."""
    if engine != "local" or workers <= 1:
        return workers
    from stpipe.hardware import machine_workers

    cap, why = (int(max_workers), f"max_workers={max_workers}") if max_workers is not None else machine_workers()
    if workers <= cap:
        return workers
    log(f"workers={workers} is more than {'allowed' if max_workers is not None else 'this machine can run'} "
        f"({why}): using workers={cap}; set max_workers=N to allow more")
    return cap


def _chunks_local(src: Source, todo: range, definition: Any, composed: Any, kw: dict[str, Any],
                  workers: int) -> Iterator[tuple[int, Any, list[Any]]]:
    if workers > 1:
        from stpipe.corpus.workers import chunks_in_pool

        yield from chunks_in_pool(src, todo, definition, build_kwargs(composed), kw, workers)
        return
    if not len(todo):
        return
    pipe = build_pipeline(definition, build_kwargs(composed))
    for k in todo:
        items, ids = src.read(k)
        yield k, encode_chunk(pipe, items, kw), ids


def _progress(src: Source, done_rows: int, show: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=src.rows, initial=done_rows, unit="sent", desc="encode", disable=not show, file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)


def encode_corpus(composed: Any, output: str | None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Encode the composed run's inputs into ``output`` (None: encode, write nothing). Summary figures. One
    writer per output: ``output`` is locked (:class:`stpipe.lock.OutputLock`) from the partial output's opening
    to the final rename."""
    from contextlib import nullcontext

    from stpipe.config.validate import validate
    from stpipe.corpus.merge import shard_name
    from stpipe.lock import OutputLock

    run = composed.run
    cfg = settings(run)
    src = open_source(run.get("inputs"), cfg["chunk_size"], cfg["shard"], cfg["max_chars"])  # before any weight
    definition = validate(composed.definition, sources=composed.sources, base_dir=composed.base_dir)
    target = Path(shard_name(output, *cfg["shard"])) if output else None
    with OutputLock(target, log=warn) if target is not None else nullcontext():
        return _encode(composed, definition, src, cfg, target, log)


def _encode(composed: Any, definition: Any, src: Source, cfg: dict[str, Any], target: Path | None,
            log: Callable[[str], None]) -> dict[str, Any]:
    from stpipe.corpus.partial import Partial

    run = composed.run
    n_chunks = len(src.positions)
    partial = None
    if target is not None:
        partial = Partial(target, job_key(definition, run, src, target), n_chunks, bool(run.get("resume")), warn)
        if partial.resumed:
            log(f"resuming {target}: {partial.resumed} of {n_chunks} chunks done, continuing at chunk "
                f"{partial.resumed}")
    start = partial.resumed if partial else 0
    todo = range(start, n_chunks)
    kw = encode_kwargs(run)
    show = show_progress(run)
    t0 = time.perf_counter()
    shape: tuple[int, ...] = (0,)
    dtype = ""
    with_ids = src.spec.id_column is not None
    if cfg["engine"] == "ray":
        from stpipe.corpus.ray_engine import chunks_on_ray

        stream = chunks_on_ray(src, todo, definition, build_kwargs(composed), kw, cfg)
    else:
        stream = _chunks_local(src, todo, definition, composed, kw, cfg["workers"])
    done_rows = sum(e["rows"] for e in partial.done) if partial else 0
    try:
        with _progress(src, done_rows, show) as bar:
            for k, result, ids in stream:
                if partial is not None:
                    partial.add(k, result, ids, with_ids)
                bar.update(len(result))
                dim = result.dim if isinstance(result, Sparse) else result.shape[1]
                dtype = "sparse float32" if isinstance(result, Sparse) else str(result.dtype)
                shape = (src.rows, dim)
        src.verify_end()
    except BaseException as exc:
        if partial is not None and (not partial.done or isinstance(exc, InputChanged)):
            partial.discard()  # nothing to resume, or rows of inputs that are no longer there
        raise
    seconds = time.perf_counter() - t0
    if partial is not None and target is not None:
        partial.finish()
        if len(shape) == 1 and target.suffix == ".npy" and src.rows:  # every chunk was done before
            from stpipe.corpus.merge import npy_header

            shape, dt, _ = npy_header(target)
            dtype = str(dt)
        if cfg["shard"][1] > 1:
            from stpipe.corpus.merge import write_shard_manifest

            write_shard_manifest(target, shard_info(definition, run, src, target, cfg["shard"]), src.rows)
    return {"target": target, "rows": src.rows, "shape": shape, "dtype": dtype, "seconds": seconds,
            "chunks": n_chunks, "encoded_chunks": len(todo), "resumed": start}
