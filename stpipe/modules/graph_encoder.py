"""``GraphEncoder``: the input module of a loaded export — tokenise with the saved tokenizer, run one graph.

A registered module type (``{type: GraphEncoder, export_dir: DIR, route: ""}``): :func:`stpipe.load` of an export,
``stpipe import DIR`` and ``stpipe encode DIR`` all build it from the definition
:func:`stpipe.formats.exported.to_definition` reads off the manifest.

It takes texts (``preprocess``: prompt prepended, padded to the longest input of the batch, truncated to
``max_seq_length`` / ``query_length`` / ``document_length``) and writes ``sentence_embedding`` (``forward``), so a
:class:`~stpipe.pipeline.Pipeline` of it — or a Router of them, one per route — keeps ``encode``'s whole API
(batching, prompts, ``normalize_embeddings``, ``truncate_dim``, ``precision``, ``convert_to_numpy`` …). It has no
torch weights; saving it again is refused (the exported directory is the saved form).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from stpipe.contracts.graph import GRAPH_ENCODER, MANIFEST
from stpipe.errors import ArgumentError, LoadError
from stpipe.formats.exported import read_manifest
from stpipe.modules.module import InputModule
from stpipe.runtimes.sessions import open_session


class GraphEncoder(InputModule):
    """Texts → ``sentence_embedding`` through the graph of one route of an export (see the module docstring)."""

    contract = GRAPH_ENCODER
    config_keys: ClassVar[list[str]] = list(GRAPH_ENCODER.config_keys)
    forward_kwargs = {"task"}
    describe = staticmethod(GRAPH_ENCODER.describe)

    def __init__(self, export_dir: str, route: str = "", provider: str | None = None,
                 threads: int | None = None) -> None:
        from transformers import AutoTokenizer

        super().__init__()
        root = Path(export_dir)
        m = read_manifest(root)
        entry = m["routes"].get(route)
        if entry is None:
            raise LoadError(f"the export has no route {route!r}; its routes: "
                            f"{', '.join(repr(r) for r in m['routes'])}", path=str(root / MANIFEST))
        self.export_dir, self.route, self.provider, self.threads = str(export_dir), route, provider, threads
        self.session = open_session(m["format"], root / entry["graph"], provider=provider, threads=threads)
        missing = [i for i in entry["inputs"] if i not in self.session.input_names]
        if missing:
            raise LoadError(f"the graph lacks the inputs the manifest names: {', '.join(missing)}",
                            path=str(root / entry["graph"]))
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(root / entry["tokenizer"]))
        except Exception as exc:
            raise LoadError(f"cannot load the saved tokenizer: {exc}", path=str(root / entry["tokenizer"])) from None
        self.dimension, self.fmt, self.precision = entry.get("dimension"), m["format"], m["precision"]
        self.query_length, self.document_length = entry.get("query_length"), entry.get("document_length")
        if entry.get("max_seq_length") is not None:
            self._tokenizer.model_max_length = entry["max_seq_length"]

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
