"""One served model: the built Pipeline or CrossEncoder, the request checks that need it, token counts, and the
merged calls the batcher makes (:meth:`ServedModel.run_embeddings`, :meth:`ServedModel.run_rerank`).

A merged call encodes the texts of several requests at once — ``Pipeline.encode`` sorts them by token count and
pads each forward batch to its longest input, as for any call — and splits the result back: each request then
gets its ``dimensions`` (``truncate_dim``) and ``normalize`` applied to its own rows, with the operations
``encode`` uses (a slice, then L2 normalisation), so a request's embeddings equal ``encode`` of its inputs alone.
Reranking merges (query, document) pairs into one ``predict`` call and ranks each request's scores as
``CrossEncoder.rank`` does (:func:`stpipe.cross_encoder.sort_ranked`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stpipe.serving.protocol import EmbeddingsRequest, HTTPError, RerankRequest, refuse_media
from stpipe.serving.settings import ModelSpec

#: the modalities a string could be taken as (besides text); a model taking any of them gets refuse_media
MEDIA = ("image", "audio", "video")


def _takes_media(modalities: Sequence[Any]) -> bool:
    for m in modalities:
        parts = m if isinstance(m, (tuple, list)) else (m,)
        if any(p in MEDIA for p in parts):
            return True
    return False


class ServedModel:
    """A :class:`ModelSpec` once built (:meth:`load`), with the run settings that shape its calls."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.run = dict(spec.composed.run)
        self.model: Any = None
        self.takes_media = False
        self.dimension: int | None = None
        self._tokenizers: dict[str | None, tuple[Any, int | None]] = {}

    @property
    def kind(self) -> str:
        """``embeddings``, ``sparse`` or ``rerank``."""
        return {"CrossEncoder": "rerank", "SparseEncoder": "sparse"}.get(self.spec.model_type, "embeddings")

    def load(self) -> None:
        """Build the model (weights load here), with the run settings' device, threads and loading policy."""
        from stpipe.builder.composed import build_composed

        self.model = build_composed(self.spec.composed)
        self.takes_media = _takes_media(self.model.modalities)
        if self.kind == "embeddings":
            self.dimension = self.model.get_embedding_dimension()

    # ------------------------------------------------------------------------------------ request checks
    def check_embeddings(self, req: EmbeddingsRequest) -> tuple[Any, ...]:
        """422 for what this model cannot do with the request; returns the batching key (the merged call's
        arguments that shape the encoding)."""
        if self.kind == "rerank":
            raise HTTPError(422, f"model '{self.name}' is a CrossEncoder: it scores (query, document) pairs; use "
                            "POST /v1/rerank", param="model", code="wrong_endpoint")
        if self.takes_media:
            refuse_media(req.texts, "input")
        if self.kind == "sparse":
            for key, value in (("dimensions", req.dimensions), ("normalize", req.normalize)):
                if value:
                    raise HTTPError(422, f"'{key}' applies to dense embeddings; model '{self.name}' is a SparseEncoder "
                                    "(its embeddings are returned whole)", param=key, code="invalid_value")
            if req.encoding_format == "base64":
                raise HTTPError(422, f"model '{self.name}' is a SparseEncoder: its embeddings are {{indices, values}}; "
                                "ask for encoding_format 'float'", param="encoding_format", code="invalid_value")
        dim = self.dimension
        if req.dimensions is not None and dim is not None and req.dimensions > dim:
            raise HTTPError(422, f"'dimensions' is {req.dimensions}, but model '{self.name}' gives {dim}-dimensional "
                            "embeddings", param="dimensions", code="invalid_value")
        task = req.task if req.task is not None else self.run.get("task")
        prompt_name = req.prompt_name if req.prompt_name is not None else self.run.get("prompt_name")
        self._check_prompt(prompt_name)
        self._check_task(task)
        return ("embeddings", task, prompt_name)

    def check_rerank(self, req: RerankRequest) -> tuple[Any, ...]:
        if self.kind != "rerank":
            raise HTTPError(422, f"model '{self.name}' is an embedding model ({self.spec.model_type}); use POST "
                            "/v1/embeddings", param="model", code="wrong_endpoint")
        if getattr(self.model, "num_labels", 1) != 1:
            raise HTTPError(422, f"model '{self.name}' gives {self.model.num_labels} scores per pair; reranking needs "
                            "one", param="model", code="wrong_endpoint")
        if self.takes_media:
            refuse_media([req.query], "query")
            refuse_media(req.documents, "documents")
        prompt_name = req.prompt_name if req.prompt_name is not None else self.run.get("prompt_name")
        self._check_prompt(prompt_name)
        return ("rerank", prompt_name)

    def _check_prompt(self, prompt_name: str | None) -> None:
        prompts = getattr(self.model, "prompts", {}) or {}
        if prompt_name is not None and prompt_name not in prompts:
            raise HTTPError(422, f"'prompt_name' {prompt_name!r} is not a prompt of model '{self.name}' (prompts: "
                            f"{', '.join(sorted(prompts)) or 'none'})", param="prompt_name", code="invalid_value")

    def _check_task(self, task: str | None) -> None:
        from stpipe.pipeline import is_router

        if task is None or not is_router(self.model[0]):
            return
        try:
            self.model[0].resolve_route(task=task, modality="text")
        except ValueError as exc:
            raise HTTPError(422, f"'task': {exc}", param="task", code="invalid_value") from None

    # ------------------------------------------------------------------------------------ token counts
    def _tokenizer(self, task: str | None) -> tuple[Any, int | None]:
        """The tokenizer of the route ``task`` takes, copied: counting runs on its own thread, and a Rust-backed
        tokenizer shared with the model's thread may fail ("Already borrowed") when both change its settings."""
        import copy

        from stpipe.pipeline import is_router

        if task in self._tokenizers:
            return self._tokenizers[task]
        first = self.model[0]
        if is_router(first):
            try:
                first = first.sub_modules[first.resolve_route(task=task, modality="text")][0]
            except (ValueError, KeyError, IndexError):
                first = None
        tok = getattr(first, "tokenizer", None)
        try:
            tok = copy.deepcopy(tok)
        except Exception:  # noqa: BLE001 - not copyable: count words instead (see count_tokens)
            tok = None
        self._tokenizers[task] = (tok, getattr(first, "max_seq_length", None))
        return self._tokenizers[task]

    def count_tokens(self, texts: Sequence[Any], task: str | None = None) -> list[int]:
        """Tokens per text (a pair: both texts) as the model's tokenizer counts them, after truncation to the
        model's ``max_seq_length``; a model without a tokenizer counts whitespace-separated words."""
        tok, limit = self._tokenizer(task)
        lengths: list[int] | None = None
        try:
            if tok is not None and callable(tok) and hasattr(tok, "pad_token_id"):  # transformers
                args = ([t[0] for t in texts], [t[1] for t in texts]) if texts and isinstance(texts[0], tuple) \
                    else (list(texts),)
                ids = tok(*args, add_special_tokens=True, truncation=limit is not None,
                          max_length=limit)["input_ids"]
                lengths = [len(x) for x in ids]
            elif tok is not None and hasattr(tok, "encode_batch"):  # a tokenizers.Tokenizer
                flat = [" ".join(t) if isinstance(t, tuple) else t for t in texts]
                lengths = [len(e.ids) for e in tok.encode_batch(flat)]
        except Exception:  # noqa: BLE001 - counting must never fail a request; fall back to words
            lengths = None
        if lengths is None:
            lengths = [sum(len(s.split()) for s in (t if isinstance(t, tuple) else (t,))) for t in texts]
        return [max(1, n) for n in lengths]

    # ------------------------------------------------------------------------------------ merged calls
    def _encode_kwargs(self) -> dict[str, Any]:
        run = self.run
        kw = {"batch_size": int(run.get("batch_size") or 32), "show_progress_bar": False}
        if run.get("max_batch_tokens"):
            kw["max_batch_tokens"] = int(run["max_batch_tokens"])
        return kw

    def run_embeddings(self, key: tuple[Any, ...], jobs: Sequence[tuple[EmbeddingsRequest, int]]) -> list[Any]:
        """One merged encode call for ``jobs`` ((request, unused)); per request its rows, finished (see the module
        docstring): a float32 numpy array (N, D), or for a SparseEncoder a list of (indices, values, dimension)."""
        import torch

        _, task, prompt_name = key
        texts = [t for req, _ in jobs for t in req.texts]
        kw = self._encode_kwargs()
        if self.kind == "sparse":
            emb = self.model.encode(texts, task=task, prompt_name=prompt_name, convert_to_tensor=True,
                                    convert_to_sparse_tensor=True, **kw).coalesce().cpu()
            rows = _sparse_rows(emb, len(texts))
        else:
            rows = self.model.encode(texts, task=task, prompt_name=prompt_name, convert_to_tensor=True, **kw)
        out, start = [], 0
        for req, _ in jobs:
            part = rows[start:start + len(req.texts)]
            start += len(req.texts)
            if self.kind != "sparse":
                dim = req.dimensions if req.dimensions is not None else self.run.get("truncate_dim")
                if dim is not None:
                    part = part[..., :dim]
                normalize = req.normalize if req.normalize is not None else bool(self.run.get("normalize_embeddings"))
                if normalize:
                    part = torch.nn.functional.normalize(part, p=2, dim=1)
                part = part.float().cpu().numpy()
            out.append(part)
        return out

    def run_rerank(self, key: tuple[Any, ...], jobs: Sequence[tuple[RerankRequest, int]]) -> list[Any]:
        """One merged ``predict`` call over every request's (query, document) pairs; per request its hits
        ``[{corpus_id, score[, text]}]`` as ``CrossEncoder.rank`` orders them."""
        from stpipe.cross_encoder import sort_ranked

        _, prompt_name = key
        pairs = [(req.query, d) for req, _ in jobs for d in req.documents]
        kw = self._encode_kwargs()
        kw.pop("max_batch_tokens", None)
        scores = self.model.predict(pairs, prompt_name=prompt_name, convert_to_tensor=True, **kw).tolist()
        out, start = [], 0
        for req, _ in jobs:
            part = scores[start:start + len(req.documents)]
            start += len(req.documents)
            out.append(sort_ranked(part, req.documents if req.return_documents else None, req.top_n))
        return out


def _sparse_rows(emb: Any, n: int) -> list[tuple[list[int], list[float], int]]:
    """(indices, values, dimension) of each row of a coalesced 2-D sparse COO tensor, indices ascending."""
    idx = emb.indices()
    vals = emb.values().float()
    dim = int(emb.shape[1])
    rows: list[tuple[list[int], list[float], int]] = [([], [], dim) for _ in range(n)]
    for r, c, v in zip(idx[0].tolist(), idx[1].tolist(), vals.tolist(), strict=True):
        rows[r][0].append(c)
        rows[r][1].append(v)
    return rows


__all__ = ["ServedModel"]
