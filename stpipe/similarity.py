"""Embedding math shared by :class:`stpipe.pipeline.Pipeline`: similarity functions (dense and sparse),
normalisation, quantisation and top-k sparsification.

Similarity functions follow sentence-transformers' definitions: ``cosine`` normalises both sides
(eps 1e-12) and takes the matrix product, ``dot`` is ``a @ b.T``, ``euclidean`` and ``manhattan`` are
negative distances. Every ``*_sim`` returns a ``(len(a), len(b))`` matrix; every ``pairwise_*`` a vector.
One-dimensional inputs count as a batch of one; inputs may be lists, numpy arrays or tensors, dense or
sparse (COO); a mixed dense/sparse pair converts the dense side to sparse.

>>> import torch
>>> a = torch.tensor([[3.0, 4.0]]); b = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
>>> cos_sim(a, b)
tensor([[1.0000, 0.8000]])
>>> euclidean_sim(a, b)
tensor([[-0.0000, -4.2426]])
>>> quantize_embeddings(torch.tensor([[1.0, -1.0, 2.0]]), "ubinary")
array([[160]], dtype=uint8)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from stpipe.contracts.pipeline import SIMILARITY_NAMES

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")
Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]


# --------------------------------------------------------------------------------------------- conversion
def to_tensor(a: Any) -> Tensor:
    """A float tensor from a list of tensors/arrays, an ndarray or a tensor (sparse stays sparse)."""
    if isinstance(a, list):
        if a and all(isinstance(x, Tensor) and x.is_sparse for x in a):
            a = torch.stack([x.coalesce().float() for x in a])
        elif a and all(isinstance(x, Tensor) for x in a):
            a = torch.stack(a)
        elif a and all(isinstance(x, np.ndarray) for x in a):
            a = torch.from_numpy(np.stack(a))
        else:
            a = torch.tensor(a)
    elif isinstance(a, np.ndarray):
        a = torch.from_numpy(a)
    elif not isinstance(a, Tensor):
        a = torch.tensor(a)
    if a.is_sparse:
        return a.float()
    if not torch.is_floating_point(a) or torch.finfo(a.dtype).bits < 32:
        a = a.float()
    return a


def to_batch(a: Any) -> Tensor:
    """Like :func:`to_tensor`, with a batch dimension added to a 1-D input."""
    a = to_tensor(a)
    return a.unsqueeze(0) if a.dim() == 1 else a


def _same_layout(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    if a.is_sparse and not b.is_sparse:
        return a, b.to_sparse()
    if b.is_sparse and not a.is_sparse:
        return a.to_sparse(), b
    return a, b


def normalize(embeddings: Tensor) -> Tensor:
    """L2-normalise along the last dimension (``max(||x||, 1e-12)``); works on sparse COO tensors."""
    if not embeddings.is_sparse:
        return torch.nn.functional.normalize(embeddings, p=2, dim=-1)
    emb = embeddings.coalesce()
    idx, val = emb.indices(), emb.values().float()
    if emb.dim() == 1:
        return torch.sparse_coo_tensor(idx, val / val.norm().clamp_min(1e-12), emb.size(), check_invariants=False)
    norms = val.new_zeros(emb.size(0)).index_add_(0, idx[0], val * val).sqrt().clamp_min(1e-12)
    out = torch.sparse_coo_tensor(idx, (val / norms[idx[0]]).to(emb.dtype), emb.size(), check_invariants=False)
    return out.coalesce()


# --------------------------------------------------------------------------------------------- similarity
def _mm(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b.T`` as a dense matrix (sparse × sparse goes through torch's beta CSR path: silence it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.mm(a, b.transpose(0, 1)).to_dense()


def dot_score(a: Any, b: Any) -> Tensor:
    """``res[i, j] = a[i] · b[j]``."""
    a, b = _same_layout(to_batch(a), to_batch(b))
    return _mm(a, b)


def cos_sim(a: Any, b: Any) -> Tensor:
    """``res[i, j] = cos(a[i], b[j])``."""
    a, b = _same_layout(to_batch(a), to_batch(b))
    return _mm(normalize(a), normalize(b))


def euclidean_sim(a: Any, b: Any) -> Tensor:
    """``res[i, j] = -||a[i] - b[j]||₂``."""
    a, b = _same_layout(to_batch(a), to_batch(b))
    if not a.is_sparse:
        return -torch.cdist(a, b, p=2.0)
    a2 = torch.sparse.sum(a * a, dim=1).to_dense().unsqueeze(1)
    b2 = torch.sparse.sum(b * b, dim=1).to_dense().unsqueeze(0)
    sq = a2 - 2 * _mm(a, b) + b2
    return -sq.clamp_min(0.0).sqrt()


def manhattan_sim(a: Any, b: Any) -> Tensor:
    """``res[i, j] = -||a[i] - b[j]||₁`` (sparse inputs are densified row block by row block)."""
    a, b = _same_layout(to_batch(a), to_batch(b))
    if not a.is_sparse:
        return -torch.cdist(a, b, p=1.0)
    dense_b = b.to_dense()
    rows = [-torch.cdist(a.index_select(0, torch.arange(i, min(i + 64, a.size(0)))).to_dense(), dense_b, p=1.0)
            for i in range(0, a.size(0), 64)]
    return torch.cat(rows) if rows else torch.empty(0, b.size(0))


def pairwise_dot_score(a: Any, b: Any) -> Tensor:
    """``res[i] = a[i] · b[i]``."""
    a, b = _same_layout(to_tensor(a), to_tensor(b))
    return (a * b).sum(dim=-1).to_dense()


def pairwise_cos_sim(a: Any, b: Any) -> Tensor:
    """``res[i] = cos(a[i], b[i])``."""
    a, b = _same_layout(to_tensor(a), to_tensor(b))
    return (normalize(a) * normalize(b)).sum(dim=-1).to_dense()


def pairwise_euclidean_sim(a: Any, b: Any) -> Tensor:
    """``res[i] = -||a[i] - b[i]||₂``."""
    a, b = _same_layout(to_tensor(a), to_tensor(b))
    diff = a - b
    if diff.is_sparse:
        return -diff.square().sum(dim=-1).to_dense().sqrt()
    return -torch.linalg.vector_norm(diff, dim=-1)


def pairwise_manhattan_sim(a: Any, b: Any) -> Tensor:
    """``res[i] = -||a[i] - b[i]||₁``."""
    a, b = _same_layout(to_tensor(a), to_tensor(b))
    return -torch.sum(torch.abs(a - b), dim=-1).to_dense()


SIMILARITY: dict[str, Callable[[Any, Any], Tensor]] = {
    "cosine": cos_sim, "dot": dot_score, "euclidean": euclidean_sim, "manhattan": manhattan_sim}
SIMILARITY_PAIRWISE: dict[str, Callable[[Any, Any], Tensor]] = {
    "cosine": pairwise_cos_sim, "dot": pairwise_dot_score, "euclidean": pairwise_euclidean_sim,
    "manhattan": pairwise_manhattan_sim}


def check_similarity_name(name: Any) -> str:
    """The similarity function name, or ValueError listing the supported ones."""
    value = getattr(name, "value", name)  # accept enum members
    if value not in SIMILARITY_NAMES:
        hint = " Multi-vector scoring (maxsim) is not supported by stpipe pipelines." if value == "maxsim" else ""
        raise ValueError(f"similarity_fn_name must be one of {list(SIMILARITY_NAMES)}, got {value!r}.{hint}")
    return value


# --------------------------------------------------------------------------------------------- quantisation
def quantize_embeddings(embeddings: Tensor | np.ndarray | list, precision: Precision) -> np.ndarray:
    """Quantise a batch of float embeddings (numpy out).

    ``int8``/``uint8`` use per-dimension min/max ranges computed from these embeddings (255 buckets,
    floor); ``binary``/``ubinary`` pack ``x > 0`` bits big-endian into bytes (``binary`` is shifted by
    -128 into int8). A single embedding cannot calibrate int8/uint8 ranges (ValueError).
    """
    if isinstance(embeddings, list):
        embeddings = (torch.stack(embeddings) if embeddings and isinstance(embeddings[0], Tensor)
                      else np.asarray(embeddings))
    if isinstance(embeddings, Tensor):
        embeddings = embeddings.detach().float().cpu().numpy()
    if embeddings.dtype in (np.int8, np.uint8):
        raise ValueError("embeddings to quantize must be float, not int8/uint8")
    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision in ("int8", "uint8"):
        if embeddings.ndim == 1 or embeddings.shape[0] == 1:
            raise ValueError(f"cannot compute {precision} quantization ranges from a single embedding; "
                             "encode a representative batch of inputs at once")
        starts = embeddings.min(axis=0).astype(np.float32)
        steps = (embeddings.max(axis=0).astype(np.float32) - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
        return q.astype(np.uint8) if precision == "uint8" else (q - 128).astype(np.int8)
    if precision == "binary":
        return (np.packbits(embeddings > 0, axis=-1) - 128).astype(np.int8)
    if precision == "ubinary":
        return np.packbits(embeddings > 0, axis=-1).astype(np.uint8)
    raise ValueError(f"Precision {precision!r} is not supported, must be one of {set(PRECISIONS)}")


def select_max_active_dims(embeddings: Tensor, max_active_dims: int | None) -> Tensor:
    """Keep the ``max_active_dims`` largest-magnitude values of each row, zero the rest (dense in, dense out)."""
    if max_active_dims is None:
        return embeddings
    if isinstance(max_active_dims, bool) or not isinstance(max_active_dims, int) or max_active_dims <= 0:
        raise ValueError(f"max_active_dims must be a positive integer, got {max_active_dims!r}")
    k = min(max_active_dims, embeddings.shape[-1])
    _, top = torch.topk(embeddings.abs(), k=k, dim=-1)
    out = torch.zeros_like(embeddings)
    return out.scatter_(-1, top, embeddings.gather(-1, top))


def decode_sparse(embeddings: Tensor, tokenizer: Any, top_k: int | None = None) -> list[Any]:
    """``(token, weight)`` pairs of the non-zero dimensions, heaviest first (sentence-transformers'
    ``SparseEncoder.decode``): a list for a 1-D embedding, a list of lists for a 2-D batch."""
    if top_k is not None and top_k <= 0:
        raise ValueError(f"top_k must be a positive integer, got {top_k}.")
    if not isinstance(embeddings, Tensor):
        raise TypeError(f"Expected torch.Tensor, got {type(embeddings)}")
    if embeddings.ndim not in (1, 2):
        raise ValueError(f"Input tensor must be 1D or 2D, got {embeddings.ndim}D.")
    if tokenizer is None:
        raise ValueError("decode() needs a tokenizer, and the first module of this pipeline has none")
    if hasattr(tokenizer, "convert_ids_to_tokens"):
        convert = tokenizer.convert_ids_to_tokens
    else:  # a raw tokenizers.Tokenizer
        def convert(ids: list[int]) -> list[str]:
            return [tokenizer.id_to_token(i) for i in ids]
    dense = (embeddings.to_dense() if embeddings.is_sparse else embeddings).reshape(-1, embeddings.shape[-1])
    out = []
    for row in dense:
        ids = torch.nonzero(row).flatten()
        values = row[ids]
        # the same ops as sentence-transformers (topk when cutting, else argsort), so ties keep its order
        if top_k is not None and top_k < len(ids):
            values, order = torch.topk(values, top_k)
        else:
            order = torch.argsort(values, descending=True)
            values = values[order]
        out.append(list(zip(convert(ids[order].tolist()), values.tolist(), strict=True)))
    return out[0] if embeddings.ndim == 1 else out
