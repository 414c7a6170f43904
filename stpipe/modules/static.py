"""``StaticEmbedding``: one vector per token, averaged over the tokens of each input (no attention).

``StaticEmbedding(tokenizer, embedding_weights=None, embedding_dim=None)``: ``tokenizer`` is a
``tokenizers.Tokenizer``, a fast Hugging Face tokenizer, or (stpipe, for YAML) the name/path of a
directory or file holding a ``tokenizer.json``. Weights are given, or random ``N(0, 1)`` rows of size
``embedding_dim`` drawn from torch's global generator (seed it with ``torch.manual_seed`` for
reproducible weights). Saved as ``model.safetensors`` (``embedding.weight``) plus ``tokenizer.json``, no
config; model2vec folders (``embeddings``, optional ``mapping`` and ``weights``) load too.

Unlike sentence-transformers, which switches padding off on the tokenizer object it is given (so a
Transformer sharing it later saves ``"padding": null``), stpipe works on a *copy* of the tokenizer: the
embeddings are identical and the caller's tokenizer is left alone.

>>> from tokenizers import Tokenizer, models, pre_tokenizers
>>> tok = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "cat": 2}, unk_token="[UNK]"))
>>> tok.pre_tokenizer = pre_tokenizers.Whitespace()
>>> emb = StaticEmbedding(tok, embedding_weights=[[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
>>> emb(emb.preprocess(["a cat"]))["sentence_embedding"].tolist()
[[2.0, 3.0]]
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from stpipe.contracts.static import STATIC_EMBEDDING
from stpipe.errors import LoadError
from stpipe.modules.modality import text_inputs
from stpipe.modules.module import InputModule
from stpipe.resources import resolve_model_path


def load_tokenizer_json(tokenizer: Any) -> Tokenizer:
    """A private ``tokenizers.Tokenizer`` from a Tokenizer, a fast HF tokenizer, or a name/path.

    A path may be a ``tokenizer.json`` file or a directory holding one; another name is loaded with
    ``AutoTokenizer`` (local cache only when ``HF_HUB_OFFLINE`` is set)."""
    if isinstance(tokenizer, Tokenizer):
        return Tokenizer.from_str(tokenizer.to_str())
    inner = getattr(tokenizer, "_tokenizer", None)
    if isinstance(inner, Tokenizer):  # PreTrainedTokenizerFast (transformers 4 and 5)
        return Tokenizer.from_str(inner.to_str())
    if isinstance(tokenizer, (str, os.PathLike)):
        path = Path(resolve_model_path(str(tokenizer)))
        file = path / "tokenizer.json" if path.is_dir() else path
        if file.is_file():
            try:
                return Tokenizer.from_file(str(file))
            except Exception as exc:  # the tokenizers library raises its own Exception type
                raise LoadError(f"cannot read tokenizer ({exc})", path=str(file)) from exc
        if path.exists():
            raise LoadError("no tokenizer.json here", path=str(path),
                            hint="give a directory holding tokenizer.json, or the tokenizer.json file itself")
        try:
            from transformers import AutoTokenizer

            hf = AutoTokenizer.from_pretrained(str(tokenizer))
        except Exception as exc:
            raise LoadError(f"cannot load tokenizer '{tokenizer}': {exc}", path=str(tokenizer),
                            hint="use a local directory with a tokenizer.json (stpipe runs offline)") from exc
        return load_tokenizer_json(hf)
    raise TypeError(f"tokenizer must be a tokenizers.Tokenizer, a fast Hugging Face tokenizer or a path, not "
                    f"{type(tokenizer).__name__}")


class StaticEmbedding(InputModule):
    """Mean of per-token embedding rows (``nn.EmbeddingBag`` in mean mode)."""

    contract = STATIC_EMBEDDING
    config_keys: list[str] = []
    describe = staticmethod(STATIC_EMBEDDING.describe)  # one static description, shared with validation

    def __init__(self, tokenizer: Tokenizer | Any, embedding_weights: np.ndarray | torch.Tensor | Any = None,
                 embedding_dim: int | None = None, **kwargs: Any) -> None:
        super().__init__()
        tok = load_tokenizer_json(tokenizer)
        tok.no_padding()
        vocab = tok.get_vocab_size()
        if embedding_weights is not None:
            weights = (torch.tensor(embedding_weights, dtype=torch.float32) if isinstance(embedding_weights, list)
                       else torch.as_tensor(embedding_weights))
            if not weights.is_floating_point():
                weights = weights.float()
            if weights.ndim != 2:
                raise ValueError(f"embedding_weights must be a (vocabulary, dimension) matrix, got shape "
                                 f"{tuple(weights.shape)}")
            if embedding_dim is not None and embedding_dim != weights.shape[1]:
                raise ValueError(f"embedding_dim={embedding_dim} does not match embedding_weights of dimension "
                                 f"{weights.shape[1]}; give one of them")
            self.embedding = nn.EmbeddingBag.from_pretrained(weights, freeze=False, mode="mean")
        elif embedding_dim is not None:
            if not isinstance(embedding_dim, int) or isinstance(embedding_dim, bool) or embedding_dim < 1:
                raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
            self.embedding = nn.EmbeddingBag(vocab, embedding_dim, mode="mean")
        else:
            raise ValueError("Either `embedding_weights` or `embedding_dim` must be provided.")
        self.tokenizer = tok
        self.embedding_dim = self.embedding.embedding_dim

    # ------------------------------------------------------------------------------------ running
    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Token ids of all inputs, concatenated (``input_ids``), and where each input starts (``offsets``). A text
        pair ``(a, b)`` is one input: the tokens of both texts (no special tokens), as sentence-transformers."""
        texts = text_inputs(list(inputs), prompt, "StaticEmbedding")
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        ids = [e.ids for e in encodings]
        starts = np.cumsum([0] + [len(i) for i in ids[:-1]]) if ids else np.zeros(0)
        return {"input_ids": torch.tensor([t for i in ids for t in i], dtype=torch.long),
                "offsets": torch.as_tensor(starts, dtype=torch.long)}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features["sentence_embedding"] = self.embedding(features["input_ids"], features["offsets"])
        return features

    # ------------------------------------------------------------------------------------ description
    @property
    def max_seq_length(self) -> float:
        """Unlimited (``math.inf``): the tokenizer's own truncation, if any, applies."""
        return math.inf

    def get_embedding_dimension(self) -> int:
        return self.embedding_dim

    def get_config_dict(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"StaticEmbedding(vocab={self.embedding.num_embeddings}, dim={self.embedding_dim})"

    # ------------------------------------------------------------------------------------ files
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        os.makedirs(output_path, exist_ok=True)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        self.save_tokenizer(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             init_defaults: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
             allow_pickle: bool = False, **kwargs: Any) -> Self:
        """Load ``model.safetensors`` + ``tokenizer.json``; model2vec files (``embeddings`` [+ ``mapping``]
        [+ ``weights``]) are turned into one matrix. ``overrides`` may replace the tokenizer or the weights."""
        hub = dict(token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
        overrides = dict(overrides or {})
        tok = overrides.pop("tokenizer", None)
        if tok is None:
            tok_path = cls.load_file_path(model_name_or_path, "tokenizer.json", subfolder, **hub)
            if tok_path is None:
                raise LoadError("no tokenizer.json found", path=str(Path(model_name_or_path, subfolder)))
            tok = tok_path
        weights = overrides.pop("embedding_weights", None)
        if weights is None:
            state = cls.load_torch_weights(model_name_or_path, subfolder, allow_pickle=allow_pickle, **hub)
            weights = _weights_from_state(state, str(Path(model_name_or_path, subfolder)))
        return cls(tok, embedding_weights=weights, **overrides)


def _weights_from_state(state: Mapping[str, torch.Tensor], where: str) -> torch.Tensor:
    """``embedding.weight`` (stpipe / sentence-transformers) or model2vec's ``embeddings``/``mapping``/``weights``."""
    if "embedding.weight" in state:
        return state["embedding.weight"]
    if "embeddings" not in state:
        raise LoadError(f"no embedding matrix in the weights (found keys {sorted(state)})", path=where,
                        hint="expected 'embedding.weight' (sentence-transformers) or 'embeddings' (model2vec)")
    weights = state["embeddings"]
    if "mapping" in state:
        weights = weights[state["mapping"].long()]
    if "weights" in state:
        weights = weights * state["weights"].to(weights.dtype)[:, None]
    return weights
