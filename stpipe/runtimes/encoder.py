"""``GraphEncoder``: the input module of a loaded export — tokenise with the saved tokenizer, run one graph.

It takes texts (``preprocess``: prompt prepended, padded to the longest input of the batch, truncated to
``max_seq_length`` / ``query_length`` / ``document_length``) and writes ``sentence_embedding`` (``forward``), so a
:class:`~stpipe.pipeline.Pipeline` of it — or a Router of them, one per route — keeps ``encode``'s whole API
(batching, prompts, ``normalize_embeddings``, ``truncate_dim``, ``precision``, ``convert_to_numpy`` …). It has no
torch weights; saving it again is refused (the exported directory is the saved form).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from stpipe.errors import ArgumentError, LoadError
from stpipe.modules.module import InputModule
from stpipe.runtimes.sessions import Session


class GraphEncoder(InputModule):
    """Texts → ``sentence_embedding`` through one ONNX Runtime / OpenVINO graph."""

    forward_kwargs = {"task"}

    def __init__(self, session: Session, tokenizer: Any, *, dimension: int | None, max_seq_length: int | None = None,
                 query_length: int | None = None, document_length: int | None = None, fmt: str = "onnx",
                 precision: str = "fp32") -> None:
        super().__init__()
        self.session, self._tokenizer = session, tokenizer
        self.dimension, self.fmt, self.precision = dimension, fmt, precision
        self.query_length, self.document_length = query_length, document_length
        if max_seq_length is not None:
            tokenizer.model_max_length = max_seq_length

    @property
    def tokenizer(self) -> Any:  # type: ignore[override]
        return self._tokenizer

    @property
    def modalities(self) -> list[str | tuple[str, ...]]:
        return ["text"]

    @property
    def max_seq_length(self) -> int | None:
        return self._tokenizer.model_max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self._tokenizer.model_max_length = value

    def get_embedding_dimension(self) -> int | None:
        return self.dimension

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, task: str | None = None,
                   **kwargs: Any) -> dict[str, Any]:
        texts = list(inputs)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ArgumentError("inputs", f"input {i}: an exported {self.fmt} graph takes texts (str), got "
                                    f"{type(t).__name__}")
        if prompt:
            texts = [prompt + t for t in texts]
        call: dict[str, Any] = {"padding": True, "truncation": "longest_first", "return_tensors": "np"}
        limit = kwargs.get("max_length") or (self.query_length if task == "query" else
                                             self.document_length if task == "document" else None)
        if limit is not None:
            call["max_length"] = limit
        batch = self._tokenizer(texts, **call)
        features: dict[str, Any] = {}
        for name in self.session.input_names:
            value = batch.get(name)
            if value is None:  # a graph input this tokenizer does not make (token_type_ids): zeros, as BERT's default
                value = np.zeros_like(batch["input_ids"])
            features[name] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.int64))
        return features

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        feeds = {n: features[n].cpu().numpy() for n in self.session.input_names}
        out = self.session.run(feeds)
        features["sentence_embedding"] = torch.from_numpy(out["sentence_embedding"])
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        raise LoadError(f"a pipeline loaded from an exported {self.fmt} graph cannot be saved as a "
                        "sentence-transformers model (it has no torch weights)", path=str(self.session.path),
                        hint="copy the exported directory, or export the original model again")
