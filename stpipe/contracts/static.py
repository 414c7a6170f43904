"""The contracts of the static and sparse modules: ``StaticEmbedding``, ``SparseStaticEmbedding``,
``SpladePooling`` (its pooling strategies and activations).

>>> SPLADE_POOLING.describe({}, {"token_embeddings": 30522}).produces
{'sentence_embedding': 30522}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stpipe.contracts.base import Contract, FeatureIO
from stpipe.resources import resolve_model_path

SPLADE_POOLING_STRATEGIES = ("max", "sum")
SPLADE_ACTIVATIONS = ("relu", "log1p_relu")


def describe_static(params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
    """``sentence_embedding`` of ``embedding_dim`` (or the width of ``embedding_weights``)."""
    weights = params.get("embedding_weights")
    dim = params.get("embedding_dim")
    if dim is None and isinstance(weights, list) and weights and isinstance(weights[0], list):
        dim = len(weights[0])
    return FeatureIO(produces={"sentence_embedding": dim if isinstance(dim, int) else None})


def vocab_size(tokenizer: Any) -> int | None:
    """The vocabulary size of a local ``tokenizer.json`` (a file, or a folder holding one); None otherwise."""
    if not isinstance(tokenizer, str):
        return None
    file = Path(resolve_model_path(tokenizer))
    file = file / "tokenizer.json" if file.is_dir() else file
    if not (file.name.endswith(".json") and file.is_file()):
        return None
    try:
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(file)).get_vocab_size(with_added_tokens=True)
    except Exception:  # an unreadable file is reported when the module is built
        return None


def describe_sparse_static(params: Mapping[str, Any], upstream: Mapping[str, int | None],
                           ctx: Any = None) -> FeatureIO:
    """Produces ``sentence_embedding`` of the vocabulary size (read from a local tokenizer.json, or None)."""
    dim = len(params["weight"]) if isinstance(params.get("weight"), list) else None
    return FeatureIO(produces={"sentence_embedding": dim if dim is not None else vocab_size(params.get("tokenizer"))})


def describe_splade(params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
    """Reads the MLM logits (``token_embeddings``); produces a vocabulary-sized ``sentence_embedding``."""
    dim = params.get("embedding_dimension")
    known = isinstance(dim, int)
    return FeatureIO(consumes={"token_embeddings": "", "attention_mask": ""},
                     produces={"sentence_embedding": dim if known else upstream.get("token_embeddings")},
                     requires_dim=[("token_embeddings", dim, "embedding_dimension")] if known else [])


STATIC_EMBEDDING = Contract(
    name="StaticEmbedding", describe=describe_static, params=("tokenizer", "embedding_weights", "embedding_dim"),
    is_input=True, shape_params={"embedding_dim": (("embedding.weight", "embeddings"), 1)})
SPARSE_STATIC_EMBEDDING = Contract(
    name="SparseStaticEmbedding", describe=describe_sparse_static, is_input=True,
    params=("tokenizer", "weight", "frozen", "path"), config_keys=("frozen",))
SPLADE_POOLING = Contract(
    name="SpladePooling", describe=describe_splade,
    params=("pooling_strategy", "activation_function", "embedding_dimension", "chunk_size"),
    config_keys=("pooling_strategy", "activation_function", "embedding_dimension"),
    config_dict=lambda saved: {"pooling_strategy": saved.get("pooling_strategy", "max"),
                               "activation_function": saved.get("activation_function", "relu"),
                               "embedding_dimension": saved.get("embedding_dimension")},
    enums={"pooling_strategy": SPLADE_POOLING_STRATEGIES, "activation_function": SPLADE_ACTIVATIONS})
