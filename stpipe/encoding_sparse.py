"""SparseEncoder output: the options ``encode`` accepts for a sparse model, and its embeddings made into the form
asked for (sparse COO, dense tensor, numpy), with ``max_active_dims``. The dense side is :mod:`stpipe.encoding`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stpipe import similarity as sim
from stpipe.encoding import Extract, feature


def sparse_flags(convert_to_numpy: bool | None, convert_to_tensor: bool | None,
                 convert_to_sparse_tensor: bool | None, save_to_cpu: bool) -> tuple[bool, bool, bool, bool]:
    """``(to_numpy, to_tensor, to_sparse, to_cpu)`` for a SparseEncoder (numpy implies dense, on cpu)."""
    if convert_to_numpy:
        convert_to_tensor, convert_to_sparse_tensor, save_to_cpu = True, False, True
    to_tensor = True if convert_to_tensor is None else convert_to_tensor
    to_sparse = True if convert_to_sparse_tensor is None else convert_to_sparse_tensor
    return bool(convert_to_numpy), to_tensor, to_sparse, save_to_cpu




def check_sparse_options(output_value: str | None, precision: str, normalize_embeddings: bool,
                         truncate_dim: int | None) -> None:
    """Reject the dense-only options: sparse embeddings are returned whole."""
    unsupported = [name for name, bad in (("output_value", output_value != "sentence_embedding"),
                                          ("precision", precision != "float32"),
                                          ("normalize_embeddings", normalize_embeddings),
                                          ("truncate_dim", truncate_dim is not None)) if bad]
    if unsupported:
        raise ValueError(f"{', '.join(unsupported)} not supported by SparseEncoder pipelines (sparse "
                         "embeddings are returned whole)")


def sparse_extractor(max_active_dims: int | None, to_sparse: bool, to_cpu: bool) -> Extract:
    """Per batch: keep the top ``max_active_dims`` of each sentence embedding, optionally as sparse COO."""

    def extract(out: dict[str, Any], n: int) -> list[Any]:
        emb = sim.select_max_active_dims(feature(out, "sentence_embedding"), max_active_dims)
        if to_sparse:
            emb = emb.to_sparse()
        if to_cpu:
            emb = emb.cpu()
        return list(emb)

    return extract


def finish_sparse(results: list[Any], single: bool, *, to_tensor: bool, to_sparse: bool, convert_to_numpy: bool,
                  to_cpu: bool, device: torch.device) -> Any:
    """Whole call: stack (an empty call gives an empty tensor), then convert (tensor, numpy or list)."""
    if results:
        stacked = torch.stack(results)
    else:
        stacked = torch.tensor([], device="cpu" if to_cpu else device)
        stacked = stacked.to_sparse() if to_sparse else stacked
    if convert_to_numpy:
        out: Any = stacked.float().numpy() if len(results) else np.array([])
    else:
        out = stacked if to_tensor else list(stacked)
    return out[0] if single else out
