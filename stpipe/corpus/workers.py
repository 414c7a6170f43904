"""``workers=N``: N model replicas in processes (``torch.multiprocessing``, spawn), feeding one ordered output.

Each worker builds the Pipeline once from the definition the parent validated (no second validation), with
``torch.get_num_threads() // N`` threads — or, when GPUs are visible and no device is set, on GPU ``rank % GPUs``.
A worker reads its chunk itself (the source knows where each chunk starts) and sends back the embeddings as
``.npy`` bytes; the parent commits them in chunk order, keeping at most ``2 N`` chunks in flight, so memory
stays a few chunks. An error in a worker (a bad line mid-stream) stops the run once the chunks before it are
committed; a worker that dies (out of memory, killed) stops it too.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

from stpipe.corpus.readers import InputChanged, Source
from stpipe.errors import CommandError, StpipeError


def _worker(rank: int, n: int, src: Source, definition: Any, build_kw: dict[str, Any], kw: dict[str, Any],
            threads: int, tasks: Any, results: Any) -> None:
    import torch

    from stpipe.corpus.runner import build_pipeline, encode_chunk
    from stpipe.corpus.writers import pack

    torch.set_num_threads(threads)
    if build_kw.get("device") is None and torch.cuda.is_available():
        build_kw = {**build_kw, "device": f"cuda:{rank % torch.cuda.device_count()}"}
    try:
        pipe = build_pipeline(definition, build_kw)
    except Exception as exc:  # reported by the parent, which stops the run
        results.put(("error", -1, ("error", f"worker {rank} could not build the model: {exc}")))
        return
    while (k := tasks.get()) is not None:
        try:
            items, ids = src.read(k)
            results.put(("ok", k, (pack(encode_chunk(pipe, items, kw)), ids)))
        except StpipeError as exc:
            results.put(("error", k, ("changed" if isinstance(exc, InputChanged) else "error", str(exc))))
        except Exception as exc:  # noqa: BLE001 — any failure is reported with its chunk
            results.put(("error", k, ("error", f"{type(exc).__name__}: {exc}")))


def chunks_in_pool(src: Source, todo: range, definition: Any, build_kw: dict[str, Any], kw: dict[str, Any],
                   workers: int) -> Iterator[tuple[int, Any, list[Any]]]:
    """``(chunk, result, ids)`` in chunk order, encoded by ``workers`` processes."""
    import torch
    import torch.multiprocessing as mp

    from stpipe.corpus.writers import unpack

    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    threads = max(1, torch.get_num_threads() // workers)
    procs = [ctx.Process(target=_worker, args=(r, workers, src, definition, build_kw, kw, threads, tasks, results),
                         daemon=True) for r in range(workers)]
    for p in procs:
        p.start()
    pending = iter(todo)
    sent = 0
    for k in pending:
        tasks.put(k)
        sent += 1
        if sent >= 2 * workers:
            break
    got: dict[int, Any] = {}
    failed: dict[int, tuple[str, str]] = {}
    try:
        for k in todo:
            while k not in got:
                if k in failed or -1 in failed:
                    kind, msg = failed.get(k) or failed[-1]
                    raise InputChanged(msg) if kind == "changed" else CommandError(msg)
                status, at, payload = _next_result(results, procs)
                (got if status == "ok" else failed)[at] = payload
            data, ids = got.pop(k)
            nxt = next(pending, None)
            if nxt is not None:
                tasks.put(nxt)
            yield k, unpack(data), ids
    finally:
        for _ in procs:
            tasks.put(None)
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


def _next_result(results: Any, procs: list[Any]) -> tuple[str, int, Any]:
    while True:
        try:
            return results.get(timeout=1.0)
        except queue.Empty:
            dead = [p for p in procs if not p.is_alive()]
            if dead:
                raise CommandError(f"a worker process stopped (exit code {dead[0].exitcode}); the chunks done so "
                                   "far are kept: rerun the same command to continue") from None
