"""Sparse (vocabulary-sized) embeddings: ``SparseStaticEmbedding`` and ``SpladePooling``.

Both write ``sentence_embedding`` as a *dense* (batch, vocabulary) tensor; the Pipeline of a
``SparseEncoder`` turns it into a torch sparse tensor.

* ``SparseStaticEmbedding(tokenizer, weight=None, frozen=False)``: one weight per vocabulary token; an
  input's embedding is the weight of every token it contains (each token counted once), e.g. IDF weights
  for the query side of an inference-free SPLADE model. ``from_json`` reads ``{token: weight}``.
* ``SpladePooling(pooling_strategy="max", activation_function="relu", embedding_dimension=None,
  chunk_size=None)``: ``log1p(relu(logits))`` (``log1p_relu``: one more ``log1p``) of a fill-mask
  Transformer's logits, masked, pooled over the tokens by max or sum.

>>> import torch
>>> logits = torch.tensor([[[1.0, -2.0], [3.0, 0.5]]])
>>> out = SpladePooling("sum")({"token_embeddings": logits, "attention_mask": torch.tensor([[1, 0]])})
>>> [round(v, 4) for v in out["sentence_embedding"][0].tolist()]
[0.6931, 0.0]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import torch
from torch import nn

from stpipe.contracts.static import (
    SPARSE_STATIC_EMBEDDING,
    SPLADE_ACTIVATIONS,
    SPLADE_POOLING,
    SPLADE_POOLING_STRATEGIES,
)
from stpipe.errors import LoadError
from stpipe.files import read_json
from stpipe.modules.modality import text_inputs
from stpipe.modules.module import InputModule, Module
from stpipe.resources import resolve_model_path


def load_hf_tokenizer(tokenizer: Any) -> Any:
    """A Hugging Face tokenizer from one, from a ``tokenizers.Tokenizer``, or from a name/path (as is, no copy)."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, Tokenizer):
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast(tokenizer_object=tokenizer)
    if isinstance(tokenizer, (str, os.PathLike)):
        from transformers import AutoTokenizer

        name = resolve_model_path(str(tokenizer))
        try:
            return AutoTokenizer.from_pretrained(name)
        except Exception as exc:
            raise LoadError(f"cannot load tokenizer '{tokenizer}': {exc}", path=name,
                            hint="use a local Hugging Face tokenizer directory (stpipe runs offline)") from exc
    if not callable(tokenizer) or not hasattr(tokenizer, "convert_tokens_to_ids"):
        raise TypeError(f"tokenizer must be a Hugging Face tokenizer or a path, not {type(tokenizer).__name__}")
    return tokenizer


class SparseStaticEmbedding(InputModule):
    """Weight of each vocabulary token present in the input (the seed's ``SparseStaticEmbedding``)."""

    contract = SPARSE_STATIC_EMBEDDING
    config_keys = list(SPARSE_STATIC_EMBEDDING.config_keys)
    describe = staticmethod(SPARSE_STATIC_EMBEDDING.describe)  # one static description, shared with validation

    def __init__(self, tokenizer: Any, weight: torch.Tensor | list[float] | None = None, frozen: bool = False,
                 path: str | None = None) -> None:
        """``path`` (stpipe, for YAML; the key sentence-transformers reads from a saved config): an IDF JSON
        file ``{token: weight}`` to build the weights from, as :meth:`from_json`."""
        super().__init__()
        self.tokenizer = load_hf_tokenizer(tokenizer)
        vocab = len(self.tokenizer)
        if path is not None:
            if weight is not None:
                raise ValueError("give either weight or path (an IDF JSON file), not both")
            weight = idf_weights(resolve_json(path), self.tokenizer)
        if weight is None:
            weight = torch.ones(vocab)
        weight = torch.as_tensor(weight, dtype=torch.float32) if isinstance(weight, list) else torch.as_tensor(weight)
        if weight.ndim != 1 or weight.shape[0] != vocab:
            raise ValueError(f"weight must hold one value per vocabulary token ({vocab}), got shape "
                             f"{tuple(weight.shape)}")
        if not isinstance(frozen, bool):
            raise ValueError(f"frozen must be true or false, got {frozen!r}")
        self.weight = nn.Parameter(weight.clone(), requires_grad=not frozen)
        self.frozen = frozen

    @classmethod
    def from_json(cls, json_path: str, tokenizer: Any, token: bool | str | None = None,
                  cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
                  **config: Any) -> Self:
        """Weights from ``{token: weight}`` (other tokens 0). ``json_path`` is the file, a directory holding
        ``idf.json``, or a Hub id whose ``idf.json`` is in the local cache."""
        tokenizer = load_hf_tokenizer(tokenizer)
        file = resolve_json(json_path, token=token, cache_folder=cache_folder, revision=revision,
                            local_files_only=local_files_only)
        return cls(tokenizer, weight=idf_weights(file, tokenizer), **config)

    # ------------------------------------------------------------------------------------ running
    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Token ids (no special tokens, padded); a text pair ``(a, b)`` is tokenized as a pair."""
        texts = text_inputs(list(inputs), prompt, "SparseStaticEmbedding")
        return dict(self.tokenizer(texts, padding=True, truncation=True, add_special_tokens=False,
                                   return_tensors="pt"))

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        ids = features["input_ids"]
        mask = features.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask.to(ids.dtype)
        presence = torch.zeros(ids.shape[0], self.weight.shape[0], dtype=ids.dtype, device=ids.device)
        presence.scatter_reduce_(1, ids, mask, reduce="amax")  # a token counts once, if any copy is unmasked
        emb = presence.to(self.weight.dtype) * self.weight
        if features.get("sentence_embedding") is not None:
            emb = emb * features["sentence_embedding"]
        features["sentence_embedding"] = emb
        return features

    # ------------------------------------------------------------------------------------ description
    @property
    def max_seq_length(self) -> int | None:
        return getattr(self.tokenizer, "model_max_length", None)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.tokenizer.model_max_length = value

    def get_embedding_dimension(self) -> int:
        return int(self.weight.shape[0])

    def __repr__(self) -> str:
        return f"SparseStaticEmbedding({self.get_config_dict()}, dim={self.get_embedding_dimension()})"

    # ------------------------------------------------------------------------------------ files
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        os.makedirs(output_path, exist_ok=True)
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        self.save_tokenizer(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             init_defaults: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
             allow_pickle: bool = False, **kwargs: Any) -> Self:
        """Config + tokenizer from the folder; weights from ``model.safetensors``, or from the IDF JSON that a
        ``"path"`` config entry names (looked up in the folder first, then as given)."""
        hub = dict(token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
        config = cls.load_config(model_name_or_path, subfolder, **hub)
        for key, value in (init_defaults or {}).items():
            config.setdefault(key, value)
        config.update(overrides or {})
        if "tokenizer" not in config:
            folder = cls.load_dir_path(model_name_or_path, subfolder, **hub)
            if folder is None:
                raise LoadError("module folder not found", path=str(Path(model_name_or_path, subfolder)))
            config["tokenizer"] = folder
        path = config.pop("path", None)
        if isinstance(path, str) and path.endswith(".json") and "weight" not in config:
            local = cls.load_file_path(model_name_or_path, path, subfolder, **hub) if not os.path.isabs(path) else None
            return cls.from_json(local or path, **hub, **config)
        if "weight" not in config:
            state = cls.load_torch_weights(model_name_or_path, subfolder, allow_pickle=allow_pickle, **hub)
            if "weight" not in state:
                raise LoadError(f"no 'weight' tensor in the weights (found {sorted(state)})",
                                path=str(Path(model_name_or_path, subfolder)))
            config["weight"] = state["weight"]
        return cls(**config)


def resolve_json(json_path: str, **hub: Any) -> str:
    """The IDF JSON file: the path itself, ``<dir>/idf.json``, or ``idf.json`` of a Hub id (cache)."""
    p = Path(resolve_model_path(str(json_path)))
    if p.is_file():
        return str(p)
    found = Module.load_file_path(str(p) if p.is_dir() else str(json_path), "idf.json", **hub)
    if found is None:
        raise LoadError(f"IDF JSON file not found at {json_path}. Please provide a valid path.", path=str(json_path),
                        hint="give a {token: weight} JSON file, or a directory holding idf.json")
    return found


def idf_weights(file: str, tokenizer: Any) -> torch.Tensor:
    """A (vocabulary,) tensor: the JSON's weight for each token it names (unknown tokens → the unk id), else 0."""
    idf = read_json(file)
    if not isinstance(idf, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                            for v in idf.values()):
        raise LoadError("expected a JSON object {token: weight}", path=file)
    weight = torch.zeros(len(tokenizer))
    ids = tokenizer.convert_tokens_to_ids(list(idf))
    for token_id, value in zip(ids, idf.values()):  # in file order: a later token wins a shared id (as ST)
        if token_id is not None:
            weight[token_id] = float(value)
    return weight


class SpladePooling(Module):
    """SPLADE pooling of masked-language-model logits into one vocabulary-sized vector per input."""

    contract = SPLADE_POOLING
    config_keys = list(SPLADE_POOLING.config_keys)
    describe = staticmethod(SPLADE_POOLING.describe)

    def __init__(self, pooling_strategy: str = "max", activation_function: str = "relu",
                 embedding_dimension: int | None = None, chunk_size: int | None = None) -> None:
        super().__init__()
        if pooling_strategy not in SPLADE_POOLING_STRATEGIES:
            raise ValueError("pooling_strategy must be either 'max' or 'sum'")
        if activation_function not in SPLADE_ACTIVATIONS:
            raise ValueError("activation_function must be either 'relu' or 'log1p_relu'")
        for name, value in (("embedding_dimension", embedding_dimension), ("chunk_size", chunk_size)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        self.pooling_strategy = pooling_strategy
        self.activation_function = activation_function
        self.embedding_dimension = embedding_dimension
        self.chunk_size = chunk_size

    def _activate(self, logits: torch.Tensor) -> torch.Tensor:
        z = torch.log1p(torch.relu(logits))
        return torch.log1p(z) if self.activation_function == "log1p_relu" else z

    def _pool(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, V) logits, (B, T) mask → (B, V), optionally ``chunk_size`` tokens at a time."""
        step = self.chunk_size or max(logits.shape[1], 1)
        out = None
        for s in range(0, logits.shape[1], step):
            z = self._activate(logits[:, s:s + step] * mask[:, s:s + step, None].to(logits.dtype))
            part = z.amax(dim=1) if self.pooling_strategy == "max" else z.sum(dim=1)
            out = part if out is None else (torch.maximum(out, part) if self.pooling_strategy == "max" else out + part)
        return out if out is not None else logits.new_zeros(logits.shape[0], logits.shape[2])

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits = features["token_embeddings"]
        if features.get("cu_seq_lens_q") is not None:  # flattened (unpadded) batch: (1, ΣL, V), one segment per input
            bounds = features["cu_seq_lens_q"].tolist()
            flat = logits.reshape(-1, logits.shape[-1])
            pooled = [self._pool(flat[a:b][None], flat.new_ones(1, b - a)) for a, b in zip(bounds[:-1], bounds[1:])]
            emb = torch.cat(pooled, dim=0)
        else:
            mask = features.get("attention_mask")
            emb = self._pool(logits, torch.ones(logits.shape[:2], device=logits.device) if mask is None else mask)
        if self.embedding_dimension is None:
            self.embedding_dimension = int(emb.shape[-1])
        features["sentence_embedding"] = emb
        return features

    def get_embedding_dimension(self) -> int | None:
        return self.embedding_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)


__all__ = ["SparseStaticEmbedding", "SpladePooling", "idf_weights"]
