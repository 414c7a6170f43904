"""``engine=ray``: the chunks embedded by Ray Data's ``map_batches`` over a pool of model actors.

The input is a Ray dataset of chunk descriptors — ``{"chunk": k}``, one row per chunk of the shard's slice;
the source (a picklable :class:`~stpipe.corpus.readers.Source`: the file and where each chunk starts) travels with
the actors, so every actor reads its own chunks from the (shared) file system and nothing of the corpus passes
through the driver on the way in. ``map_batches(ChunkEncoder, batch_size=1, compute=ActorPoolStrategy(…))``
builds the Pipeline once per actor from the definition the driver validated (a bad definition fails on the
driver, before any actor starts); the embeddings come back as ``.npy`` bytes with the chunk index and are
committed in order (``preserve_order``) by the driver into Parquet/npy/jsonl chunks, so resume and shards work
as with the local engine. ``ray.address=…`` joins a running cluster; without it a local Ray starts with
``ray.num_cpus`` (default: all) CPUs. Needs the extra ``stpipe[ray]``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from stpipe.corpus.readers import InputChanged, Source
from stpipe.errors import CommandError

EXTRA = "ray"


class ChunkEncoder:
    """A Ray actor: one Pipeline, built once; each batch is one chunk index → its embeddings and ids."""

    def __init__(self, src: Source, definition: Any, build_kw: dict[str, Any], kw: dict[str, Any],
                 threads: int) -> None:
        import torch

        from stpipe.corpus.runner import build_pipeline

        torch.set_num_threads(threads)
        self.src, self.kw = src, kw
        self.pipe = build_pipeline(definition, build_kw)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import json

        import numpy as np

        from stpipe.corpus.runner import encode_chunk
        from stpipe.corpus.writers import pack

        out: dict[str, list[Any]] = {"chunk": [], "data": [], "ids": []}
        for k in batch["chunk"]:
            items, ids = self.src.read(int(k))
            out["chunk"].append(int(k))
            out["data"].append(pack(encode_chunk(self.pipe, items, self.kw)))
            out["ids"].append(json.dumps(ids, default=str))
        return {"chunk": np.array(out["chunk"], dtype=np.int64), "data": np.array(out["data"], dtype=object),
                "ids": np.array(out["ids"], dtype=object)}


def _init(cfg: dict[str, Any]) -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise CommandError(f"engine=ray needs Ray: pip install 'stpipe[{EXTRA}]'") from None
    opts = cfg.get("ray") or {}
    if not ray.is_initialized():
        if opts.get("address"):
            ray.init(address=opts["address"], log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=opts.get("num_cpus"), include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
    return ray


def chunks_on_ray(src: Source, todo: range, definition: Any, build_kw: dict[str, Any], kw: dict[str, Any],
                  cfg: dict[str, Any]) -> Iterator[tuple[int, Any, list[Any]]]:
    """``(chunk, result, ids)`` in chunk order, encoded by ``cfg["workers"]`` Ray actors."""
    import json

    from stpipe.corpus.writers import unpack

    if not len(todo):
        return
    ray = _init(cfg)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    actors = max(1, cfg["workers"])
    cpus = ray.cluster_resources().get("CPU", 1.0)
    threads = max(1, int(cpus) // actors)
    ds = ray.data.from_items([{"chunk": k} for k in todo], override_num_blocks=len(todo))
    encoded = ds.map_batches(ChunkEncoder, batch_size=1, compute=ray.data.ActorPoolStrategy(size=actors),
                             fn_constructor_kwargs={"src": src, "definition": definition, "build_kw": build_kw,
                                                    "kw": kw, "threads": threads},
                             num_cpus=min(float(threads), cpus), zero_copy_batch=True)
    expected = iter(todo)
    try:
        for row in encoded.iter_rows():
            k = int(row["chunk"])
            want = next(expected)
            if k != want:
                raise CommandError(f"engine=ray returned chunk {k} where chunk {want} was due (order lost)")
            yield k, unpack(row["data"]), json.loads(row["ids"])
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
        if isinstance(cause, InputChanged):
            raise InputChanged(str(cause)) from None
        raise CommandError(f"engine=ray: {str(cause).splitlines()[-1] if str(cause) else type(cause).__name__}; "
                           "the chunks done so far are kept: rerun to continue") from None
