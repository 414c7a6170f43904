"""How long a Transformer's inputs may be — the one home of both rules, torch-free.

* :func:`max_positions`: the most tokens a model with this ``config.json`` can embed (validation's bound for an
  explicit ``max_seq_length``): learned absolute positions only, ``text_config`` of multimodal models read, the
  padding offset of RoBERTa-like models subtracted; None for relative or rotary positions.
* :func:`default_max_seq_length`: sentence-transformers' default when ``max_seq_length`` is not given — the
  tokenizer's ``model_max_length`` capped by ``max_position_embeddings`` (transformers' "no limit" sentinel and
  ``-1`` ignored). The runtime Transformer and the codec reading a saved folder both apply it.

>>> max_positions({"model_type": "bert", "max_position_embeddings": 512})
512
>>> max_positions({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1})
512
>>> max_positions({"model_type": "llama", "max_position_embeddings": 2048, "rope_theta": 10000.0}) is None
True
>>> default_max_seq_length(int(1e30), 512), default_max_seq_length(128, 512), default_max_seq_length(None, -1)
(512, 128, None)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: model types whose position ids start after the padding index (``max_position_embeddings`` - pad - 1 usable)
PADDING_OFFSET_TYPES = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "mpnet", "longformer",
                        "data2vec-text", "roberta-prelayernorm")
#: a tokenizer ``model_max_length`` above this is transformers' "no limit" sentinel
NO_LIMIT = 10**8


def text_config(hf: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The part of a ``config.json`` that describes the text model (itself, or its ``text_config``)."""
    if not isinstance(hf, Mapping):
        return None
    cfg = hf if "max_position_embeddings" in hf else hf.get("text_config")
    return cfg if isinstance(cfg, Mapping) else None


def max_positions(hf: Mapping[str, Any] | None) -> int | None:
    """The most tokens a model with this ``config.json`` embeds (see the module docstring)."""
    cfg = text_config(hf)
    if cfg is None:
        return None
    n = cfg.get("max_position_embeddings")
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        return None
    if cfg.get("position_biased_input") is False or cfg.get("position_embedding_type", "absolute") != "absolute":
        return None  # DeBERTa-v2/v3, relative-key BERT: longer inputs do not index past a table
    if any("rope" in str(k) for k in cfg):
        return None  # rotary positions: no table to index past (quality may still degrade)
    if cfg.get("model_type") in PADDING_OFFSET_TYPES:
        pad = cfg.get("pad_token_id")
        n -= (pad if isinstance(pad, int) else 1) + 1
    return n


def default_max_seq_length(model_max_length: Any, max_position_embeddings: Any) -> int | None:
    """sentence-transformers' ``max_seq_length`` when none is given (see the module docstring)."""
    length = model_max_length if isinstance(model_max_length, int) and 0 < model_max_length <= NO_LIMIT else None
    limit = max_position_embeddings
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        return limit if length is None else min(length, limit)
    return length


__all__ = ["NO_LIMIT", "PADDING_OFFSET_TYPES", "default_max_seq_length", "max_positions", "text_config"]
