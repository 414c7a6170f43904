"""``model_type: CrossEncoder``: a :class:`~stpipe.pipeline.Pipeline` that scores pairs, like sentence-transformers
6.2's ``CrossEncoder``.

The modules end in the ``scores`` feature (a ``sequence-classification`` Transformer, or any module writing
``scores``). :meth:`CrossEncoder.predict` runs pairs through them in length-sorted batches and applies the
activation: the model's ``activation_fn`` (saved in ``config_sentence_transformers.json`` as a dotted ``torch.nn``
class path; a YAML may also give a short name such as ``sigmoid``), else ``Sigmoid`` for one label and
``Identity`` otherwise — then squeezes a one-label result to one score per pair and, with ``apply_softmax``,
softmaxes several labels. :meth:`CrossEncoder.rank` scores a query against documents and sorts by descending
score (a stable sort: ties keep the documents' order), as sentence-transformers does. ``encode`` is refused (a
CrossEncoder returns scores, not embeddings) and so are ``predict``/``rank`` on other pipelines
(:func:`not_a_cross_encoder`).

>>> from stpipe.modules.module import Module
>>> class Score(Module):
...     def forward(self, features, **kw):
...         features["scores"] = features["x"]
...         return features
...     def save(self, output_path, *args, safe_serialization=True, **kwargs): ...
>>> ce = CrossEncoder([Score()])
>>> ce.model_type, type(ce.activation_fn).__name__, ce.num_labels
('CrossEncoder', 'Sigmoid', 1)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from stpipe import encoding as enc
from stpipe.contracts.pipeline import not_a_cross_encoder
from stpipe.errors import ArgumentError, ModelTypeError
from stpipe.input_check import check_inputs
from stpipe.modules.activations import activation_name, resolve_activation
from stpipe.pipeline import Pipeline

__all__ = ["CrossEncoder", "not_a_cross_encoder", "pair_list", "sort_ranked"]

logger = logging.getLogger("stpipe")


def pair_list(inputs: Any) -> tuple[list[tuple[Any, ...]], bool]:
    """``(pairs as tuples, whether one pair was given)``; ValueError naming the first input that is no pair."""
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in ("U", "O"):
        inputs = inputs.tolist()
    seq = (list, tuple)
    single = isinstance(inputs, seq) and len(inputs) > 0 and not isinstance(inputs[0], seq)
    if single:
        inputs = [inputs]
    elif not isinstance(inputs, seq):
        try:
            inputs = list(inputs)
        except TypeError:
            raise ValueError(f"predict() takes pairs, e.g. [('query', 'document'), ...], got "
                             f"{type(inputs).__name__}") from None
    pairs = []
    for i, pair in enumerate(inputs):
        if not isinstance(pair, seq) or len(pair) != 2:
            found = f"{type(pair).__name__} of length {len(pair)}" if isinstance(pair, seq) else repr(pair)[:60]
            raise ValueError(f"input {i} is not a pair: expected two items (query, document), found {found}")
        pairs.append(tuple(pair))
    return pairs, single


def sort_ranked(scores: Sequence[float], documents: Sequence[Any] | None, top_k: int | None) -> list[dict[str, Any]]:
    """``[{corpus_id, score[, text]}]`` by descending score; ties keep the documents' order (a stable sort, as
    sentence-transformers' ``sorted(..., reverse=True)``); the first ``top_k`` (all when None)."""
    hits = [{"corpus_id": i, "score": float(s)} for i, s in enumerate(scores)]
    if documents is not None:
        for hit in hits:
            hit["text"] = documents[hit["corpus_id"]]
    return sorted(hits, key=lambda h: h["score"], reverse=True)[:top_k]


class CrossEncoder(Pipeline):
    """A pipeline that scores (query, document) pairs; see the module docstring.

    Args:
        modules: the modules, ending in ``scores``.
        activation_fn: applied to the scores in :meth:`predict`: an ``nn.Module``/callable, a torch.nn activation
            name (``sigmoid``, ``identity``, ``torch.nn.modules.activation.Sigmoid``) or None (Sigmoid for one
            label, Identity otherwise).
        model_type: must be ``"CrossEncoder"`` (accepted so a definition's keys pass through).
        **kwargs: the :class:`~stpipe.pipeline.Pipeline` arguments (name, prompts, default_prompt_name, device …).
    """

    def __init__(self, modules: Sequence[torch.nn.Module] | Mapping[str, torch.nn.Module], *,
                 activation_fn: Callable[[torch.Tensor], torch.Tensor] | str | None = None,
                 model_type: str = "CrossEncoder", **kwargs: Any) -> None:
        if model_type != "CrossEncoder":
            raise ArgumentError("model_type", f"a CrossEncoder has model_type 'CrossEncoder', got {model_type!r}")
        for key in ("truncate_dim", "max_active_dims"):
            if kwargs.get(key) is not None:
                raise ArgumentError(key, f"{key} applies to embedding models, not to a CrossEncoder")
        super().__init__(modules, model_type="CrossEncoder", **kwargs)
        try:
            act = resolve_activation(activation_fn) if isinstance(activation_fn, str) else activation_fn
        except ValueError as exc:
            raise ArgumentError("activation_fn", str(exc).replace("activation_function", "activation_fn")) from None
        self.activation_fn = act if act is not None else self.default_activation_fn()

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "activation_fn":  # a plain attribute, not a registered submodule (no weights, not saved as one)
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def num_labels(self) -> int:
        """How many scores each pair gets: the last module writing ``scores`` (a Dense's ``out_features``, a
        Transformer's ``config.num_labels``, a logit-score module's 1); 1 when none says."""
        for module in reversed(list(self._modules.values())):
            if getattr(module, "module_output_name", None) == "scores" and isinstance(
                    getattr(module, "out_features", None), int):
                return module.out_features
            config = getattr(getattr(module, "model", None), "config", None)
            if config is not None and getattr(module, "module_output_name", None) == "scores":
                return int(config.num_labels)
            if type(module).__name__ == "LogitScore":
                return 1
        return 1

    def default_activation_fn(self) -> torch.nn.Module:
        """Sigmoid for one label, Identity otherwise (sentence-transformers' default)."""
        return torch.nn.Sigmoid() if self.num_labels == 1 else torch.nn.Identity()

    @property
    def activation_fn_name(self) -> str:
        """The dotted path saved as ``activation_fn``: the class of an ``nn.Module``
        (``torch.nn.modules.activation.Sigmoid``), else the callable's own name."""
        act = self.activation_fn
        if isinstance(act, torch.nn.Module) or not hasattr(act, "__qualname__"):
            return activation_name(act)
        return f"{act.__module__}.{act.__qualname__}"

    def get_embedding_dimension(self) -> int | None:
        return None

    get_sentence_embedding_dimension = get_embedding_dimension

    # ------------------------------------------------------------------------------------ refused
    def encode(self, *args: Any, **kwargs: Any) -> Any:
        raise ModelTypeError("encode() returns embeddings, but this is a CrossEncoder model (it scores pairs)",
                             hint="use predict([(query, document), ...]) or rank(query, documents)")

    def encode_query(self, *args: Any, **kwargs: Any) -> Any:
        return self.encode()

    def encode_document(self, *args: Any, **kwargs: Any) -> Any:
        return self.encode()

    # ------------------------------------------------------------------------------------ scoring
    def predict(self, inputs: Any, prompt_name: str | None = None, prompt: str | None = None, batch_size: int = 32,
                show_progress_bar: bool | None = None, activation_fn: Callable | None = None,
                apply_softmax: bool | None = False, convert_to_numpy: bool = True, convert_to_tensor: bool = False,
                device: str | torch.device | None = None, **kwargs: Any) -> Any:
        """Scores of pairs ``[(query, document), ...]`` (one pair → one score): a numpy array by default
        (``convert_to_tensor=True`` → a tensor; both False → a list of tensors); shape (N,) for one label, (N,
        num_labels) otherwise. ``activation_fn`` replaces the model's for this call."""
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        pairs, single = pair_list(inputs)
        if pairs:  # each pair, named by its index, before anything runs
            check_inputs(self[0], pairs, self.model_type)
        prompt = enc.resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)
        act = self.activation_fn if activation_fn is None else activation_fn
        target = self._prepare_device(device)
        self.eval()
        extract = self._score_extractor(act, bool(apply_softmax))
        scores = self._run_batches(pairs, prompt=prompt, batch_size=batch_size, show_progress_bar=show_progress_bar,
                                   device=target, kwargs=dict(kwargs), forward_kwargs=dict(kwargs), extract=extract)
        if convert_to_tensor:
            out: Any = torch.stack(scores) if scores else torch.tensor([], device=target)
        elif convert_to_numpy:
            out = torch.stack(scores).float().cpu().numpy() if scores else np.array([])
        else:
            out = scores
        return out[0] if single else out

    def _score_extractor(self, act: Callable | None, apply_softmax: bool) -> enc.Extract:
        num_labels = self.num_labels

        def extract(out: dict[str, Any], n: int) -> list[Any]:
            scores = enc.feature(out, "scores")
            if torch.is_floating_point(scores) and torch.finfo(scores.dtype).bits < 32:
                scores = scores.float()  # sub-fp32 scores are upcast (as sentence-transformers, to break ties)
            if act is not None:
                scores = act(scores)
            if num_labels == 1 and scores.ndim > 1:
                scores = scores.squeeze(-1)
            if apply_softmax and scores.ndim > 1:
                scores = torch.nn.functional.softmax(scores, dim=1)
            return list(scores)
        return extract

    def rank(self, query: Any, documents: Sequence[Any], top_k: int | None = None, return_documents: bool = False,
             prompt_name: str | None = None, prompt: str | None = None, batch_size: int = 32,
             show_progress_bar: bool | None = None, activation_fn: Callable | None = None,
             device: str | torch.device | None = None) -> list[dict[str, Any]]:
        """``documents`` ranked for ``query``: ``[{"corpus_id", "score"[, "text"]}]`` by descending score, the first
        ``top_k``. Needs a one-label model."""
        if self.num_labels != 1:
            raise ValueError(f"rank() needs a model with one score per pair (num_labels=1), this one has "
                             f"{self.num_labels}; use predict() with (query, document) pairs instead")
        if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
            raise ValueError(f"rank() takes a list of documents, got {type(documents).__name__}")
        if not documents:
            raise ValueError("rank() got no documents to rank (an empty list)")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        scores = self.predict([(query, d) for d in documents], prompt_name=prompt_name, prompt=prompt,
                              batch_size=batch_size, show_progress_bar=show_progress_bar,
                              activation_fn=activation_fn, convert_to_tensor=True, device=device).tolist()
        return sort_ranked(scores, documents if return_documents else None, top_k)
