"""The runtime: a :class:`Pipeline` runs its modules in sequence, like sentence-transformers'
``SentenceTransformer`` (dense) or ``SparseEncoder`` (``model_type="SparseEncoder"``).

``encode`` follows sentence-transformers 6.2: inputs are sorted by a length estimate, cut into batches,
run through ``preprocess`` → forward under ``torch.inference_mode``, and restored to input order;
post-processing is truncate → normalise (per batch) → quantise (whole call) → convert. In a pipeline
whose first module routes by modality (a Router), a call mixing modalities is split into one group per
modality and reassembled in input order. The stateless steps (argument checks, length sorting and
batching, output post-processing) live in :mod:`stpipe.encoding`; this class keeps the state and the loop.

>>> from stpipe.modules.module import Module
>>> class Scale(Module):
...     def forward(self, features, **kw):
...         features["sentence_embedding"] = 2 * features["sentence_embedding"]
...         return features
...     def save(self, output_path, *args, safe_serialization=True, **kwargs): ...
>>> pipe = Pipeline([Scale()])
>>> pipe.similarity_fn_name, pipe.prompts
('cosine', {'query': '', 'document': ''})
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from tqdm.autonotebook import tqdm

from stpipe import encoding as enc
from stpipe import similarity as sim
from stpipe.encoding import input_length, is_single_input
from stpipe.errors import ArgumentError
from stpipe.input_check import check_inputs
from stpipe.modules.modality import check_batch_modality, normalize_modality, supports
from stpipe.modules.module import Module
from stpipe.modules.router import split_task_dicts

__all__ = ["MODEL_TYPES", "Pipeline", "default_device", "input_length", "is_router", "is_single_input"]

logger = logging.getLogger("stpipe")

MODEL_TYPES = ("SentenceTransformer", "SparseEncoder", "CrossEncoder")  # CrossEncoder: stpipe/cross_encoder.py


def default_device() -> str:
    """``cuda`` when available, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def is_router(module: Any) -> bool:
    """Routers receive every encode keyword argument (sentence-transformers' rule)."""
    return any(c.__name__ in ("Router", "Asym") for c in type(module).__mro__)


@contextlib.contextmanager
def _blame(key: str) -> Iterator[None]:
    """A ValueError/TypeError raised inside becomes an :class:`ArgumentError` naming the argument ``key``."""
    try:
        yield
    except ArgumentError:
        raise
    except (ValueError, TypeError) as exc:
        raise ArgumentError(key, str(exc)) from None


class Pipeline(torch.nn.Sequential):
    """An embedding model: modules run in sequence over a ``features`` dict.

    Args:
        modules: the modules, in order (a list, or an ordered mapping name → module).
        name: a display name (saved in README.md).
        model_type: ``"SentenceTransformer"`` (dense output) or ``"SparseEncoder"`` (sparse COO output).
        similarity_fn_name: cosine | dot | euclidean | manhattan; None = lazy default (cosine, dot for sparse).
        prompts: name → prompt text; ``query`` and ``document`` always exist (default "").
        default_prompt_name: the prompt applied when none is given; must be a key of ``prompts``.
        truncate_dim: keep only the first dimensions of sentence embeddings (dense models).
        max_active_dims: keep only the top-k dimensions of each embedding (sparse models).
        device: where to run; default ``cuda`` if available, else ``cpu``.
        definition: the model definition the pipeline was built from (kept for export).
        module_kwargs: module name → extra encode kwargs routed to its forward (``modules.json`` "kwargs").
    """

    def __init__(
        self,
        modules: Sequence[torch.nn.Module] | Mapping[str, torch.nn.Module],
        *,
        name: str | None = None,
        model_type: str = "SentenceTransformer",
        similarity_fn_name: str | None = None,
        prompts: Mapping[str, str | None] | None = None,
        default_prompt_name: str | None = None,
        truncate_dim: int | None = None,
        max_active_dims: int | None = None,
        device: str | torch.device | None = None,
        definition: Mapping[str, Any] | None = None,
        module_kwargs: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        named = (OrderedDict(modules) if isinstance(modules, Mapping)
                 else OrderedDict((str(i), m) for i, m in enumerate(modules)))
        if not named:
            raise ValueError("a Pipeline needs at least one module")
        super().__init__(named)
        if model_type not in MODEL_TYPES:
            raise ArgumentError("model_type", f"model_type must be one of {list(MODEL_TYPES)}, got {model_type!r}")
        self.name = name
        self.model_type = model_type
        self._similarity_fn_name: str | None = None
        with _blame("similarity_fn_name"):
            self.similarity_fn_name = similarity_fn_name
        merged = {"query": "", "document": ""}
        if prompts is not None and not isinstance(prompts, Mapping):
            raise ArgumentError("prompts", f"prompts must be a mapping of prompt name → text, got "
                                f"{type(prompts).__name__}")
        merged.update({k: "" if v is None else v for k, v in (prompts or {}).items()})
        self.prompts: dict[str, str] = merged
        if default_prompt_name is not None and default_prompt_name not in self.prompts:
            raise ArgumentError("default_prompt_name", f"Default prompt name '{default_prompt_name}' not found in "
                                f"the configured prompts dictionary with keys {list(self.prompts)!r}.")
        self.default_prompt_name = default_prompt_name
        with _blame("truncate_dim"):
            self.truncate_dim = enc.check_truncate_dim(truncate_dim)
        if max_active_dims is not None:
            with _blame("max_active_dims"):
                sim.select_max_active_dims(torch.zeros(1, 1), max_active_dims)  # validates
        self.max_active_dims = max_active_dims
        self.definition = dict(definition) if definition is not None else None
        self.module_kwargs: dict[str, list[str]] = {k: list(v) for k, v in (module_kwargs or {}).items()}
        first = next(self[0].parameters(), None)
        if first is not None and first.is_floating_point():
            for module in list(self._modules.values())[1:]:
                module.to(first.dtype)
        self.to(device or default_device())
        for module in self._modules.values():
            if isinstance(module, Module):
                module.on_model_ready(self)

    # ------------------------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """The device of the first parameter (or buffer); cpu when the pipeline has none."""
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    @property
    def similarity_fn_name(self) -> str:
        """The similarity function's name; set lazily to cosine (dot for a SparseEncoder) on first read."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "dot" if self.model_type == "SparseEncoder" else "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | None) -> None:
        self._similarity_fn_name = None if value is None else sim.check_similarity_name(value)

    @property
    def tokenizer(self) -> Any:
        return self[0].tokenizer

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        self[0].tokenizer = value

    @property
    def max_seq_length(self) -> int | None:
        return getattr(self[0], "max_seq_length", None)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self[0].max_seq_length = value

    @property
    def modalities(self) -> list[Any]:
        return list(getattr(self[0], "modalities", ["text"]))

    def supports(self, modality: Any) -> bool:
        """Whether the first module accepts this modality (a tuple also needs ``message`` support)."""
        try:
            return supports(normalize_modality(modality), self.modalities)
        except TypeError:  # not a modality at all
            return False

    def get_embedding_dimension(self) -> int | None:
        """The output dimension: the last module that reports one, capped by ``truncate_dim``."""
        dim = None
        for module in reversed(list(self._modules.values())):
            for attr in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
                fn = getattr(module, attr, None)
                if callable(fn):
                    dim = fn()
                    break
            if dim is not None:
                break
        if self.truncate_dim is not None and self.model_type == "SentenceTransformer":
            return self.truncate_dim if dim is None else min(dim, self.truncate_dim)
        return dim

    get_sentence_embedding_dimension = get_embedding_dimension

    def get_model_kwargs(self) -> list[str]:
        """Extra ``encode`` keyword arguments some module's forward accepts (Router routes included)."""
        keys: set[str] = set()
        for module in self.modules():
            if isinstance(module, Module):
                keys.update(module.forward_kwargs)
        for names in self.module_kwargs.values():
            keys.update(names)
        return sorted(keys)

    @contextlib.contextmanager
    def truncate_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Inside this context, ``encode`` truncates sentence embeddings to ``truncate_dim``."""
        old, self.truncate_dim = self.truncate_dim, enc.check_truncate_dim(truncate_dim)
        try:
            yield
        finally:
            self.truncate_dim = old

    # ------------------------------------------------------------------------------------ running
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Run every module; a Router gets all kwargs, others only those in their ``forward_kwargs``."""
        for name, module in self._modules.items():
            if is_router(module):
                module_kwargs = kwargs
            else:
                wanted = set(getattr(module, "forward_kwargs", ())) | set(self.module_kwargs.get(name, ()))
                module_kwargs = {k: v for k, v in kwargs.items() if k in wanted}
            features = module(features, **module_kwargs)
        return features

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Turn a batch of inputs into features with the first module's ``preprocess``."""
        if not inputs:
            return {}
        check_batch_modality(list(inputs), kwargs.get("modality"), self.modalities, f"{self.model_type} model")
        return enc.call_preprocess(self[0], list(inputs), prompt, **kwargs)

    def _run_batches(self, inputs: list[Any], *, prompt: str | None, batch_size: int, show_progress_bar: bool,
                     device: torch.device, kwargs: dict[str, Any], forward_kwargs: dict[str, Any],
                     extract: enc.Extract, max_batch_tokens: int | None = None) -> list[Any]:
        """preprocess → forward over length-sorted batches; input order is kept. Plain texts are tokenised once
        and batched by token count (``max_batch_tokens`` caps a batch's padded tokens), each batch padded to its
        longest input only; other inputs are sorted by a size estimate (split by modality for routing
        pipelines). ``extract(out_features, n)`` turns a batch's output into n per-input results."""
        groups: dict[Any, list[int]] = {None: list(range(len(inputs)))}
        if "modality" not in kwargs and "modality" in self.get_model_kwargs() and len(inputs) > 1:
            groups = enc.group_by_modality(inputs, self.modalities)
        pre = (enc.pretokenized(self[0], self.preprocess, inputs, prompt, kwargs)
               if list(groups) == [None] and not is_router(self[0]) else None)
        if pre is not None:
            columns, rest, pads, side = pre
            lengths = [len(ids) for ids in columns["input_ids"]]
            plan = [(None, b) for b in enc.token_batches(lengths, batch_size, max_batch_tokens)]
        else:
            plan = [(m, b) for m, ix in groups.items() for b in enc.length_sorted_batches(inputs, ix, batch_size)]
        results: list[Any] = [None] * len(inputs)
        label = f"{'predict' if self.model_type == 'CrossEncoder' else 'encode'} batches"
        for modality, batch_ix in tqdm(plan, desc=label, unit="batch", disable=not show_progress_bar):
            extra = {} if modality is None else {"modality": modality}
            if pre is not None:
                features = {**enc.pad_batch(columns, batch_ix, pads, side), **rest}
            else:
                features = self.preprocess([inputs[i] for i in batch_ix], prompt=prompt, **kwargs, **extra)
            features = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
            with torch.inference_mode():
                out = self(features, **forward_kwargs, **extra)
            for i, value in zip(batch_ix, extract(out, len(batch_ix)), strict=True):
                results[i] = value
        return results

    def encode(
        self,
        inputs: Any,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: str | None = "sentence_embedding",
        precision: str = "float32",
        convert_to_numpy: bool | None = None,
        convert_to_tensor: bool | None = None,
        device: str | torch.device | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        task: str | None = None,
        modality: Any = None,
        convert_to_sparse_tensor: bool | None = None,
        max_active_dims: int | None = None,
        save_to_cpu: bool = False,
        max_batch_tokens: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Embed one input (→ one embedding) or a batch (→ a 2-D result), as sentence-transformers does.

        Dense pipelines return a numpy array by default (``convert_to_tensor=True`` → a tensor, both
        False → a list of tensors); ``output_value="token_embeddings"`` gives one (tokens, dim) tensor per
        input and ``None`` one dict of features per input. SparseEncoder pipelines return a sparse COO
        tensor by default (``convert_to_sparse_tensor=False`` → dense, ``convert_to_tensor=False`` → a list).
        ``precision`` (int8/uint8/binary/ubinary) quantises the whole result; ``task`` and ``modality``
        reach the first module's ``preprocess`` and a Router's forward. Texts are batched by token count;
        ``max_batch_tokens`` also caps each batch's padded tokens (batches hold at most ``batch_size`` inputs
        either way: give a large ``batch_size`` to let the budget alone decide).
        """
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        enc.check_max_batch_tokens(max_batch_tokens)
        inputs, single = enc.as_input_list(inputs)
        modality = enc.check_encode_kwargs(kwargs, self.get_model_kwargs(), modality)
        enc.check_truncate_dim(truncate_dim)
        if task is None and is_router(self[0]):  # old-style [{"query": "x"}, ...]: the same task for the whole call
            inputs, task = split_task_dicts(inputs)
        if modality is not None and inputs:  # the whole call at once, whatever the batches
            check_batch_modality(inputs, modality, self.modalities, f"{self.model_type} model")
        elif inputs:  # each input, named by its index (a Router: by the route it resolves to)
            check_inputs(self[0], inputs, self.model_type, task)
        if precision not in sim.PRECISIONS:
            raise ValueError(f"Precision {precision!r} is not supported, must be one of {set(sim.PRECISIONS)}")
        prompt = enc.resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)
        call_kwargs = dict(kwargs)
        if task is not None:
            call_kwargs["task"] = task
        if modality is not None:
            call_kwargs["modality"] = modality
        target = self._prepare_device(device)
        run = dict(prompt=prompt, batch_size=batch_size, show_progress_bar=show_progress_bar, device=target,
                   kwargs=call_kwargs, max_batch_tokens=max_batch_tokens)
        self.eval()
        if self.model_type == "SparseEncoder":  # as sentence-transformers: only the forward runs in inference
            # mode, so the returned sparse tensor is an ordinary one (coalesce() and in-place ops work)
            enc.check_sparse_options(output_value, precision, normalize_embeddings, truncate_dim)
            to_numpy, to_tensor, to_sparse, to_cpu = enc.sparse_flags(convert_to_numpy, convert_to_tensor,
                                                                      convert_to_sparse_tensor, save_to_cpu)
            k = max_active_dims if max_active_dims is not None else self.max_active_dims
            forward_kwargs = call_kwargs if k is None else {**call_kwargs, "max_active_dims": k}
            results = self._run_batches(inputs, forward_kwargs=forward_kwargs,
                                        extract=enc.sparse_extractor(k, to_sparse, to_cpu=to_cpu), **run)
            return enc.finish_sparse(results, single, to_tensor=to_tensor, to_sparse=to_sparse,
                                     convert_to_numpy=to_numpy, to_cpu=to_cpu, device=target)
        with torch.inference_mode():
            if convert_to_sparse_tensor or max_active_dims is not None:
                raise ValueError("convert_to_sparse_tensor and max_active_dims apply to SparseEncoder pipelines only")
            to_numpy, to_tensor = enc.dense_flags(output_value, convert_to_numpy, convert_to_tensor)
            dim = truncate_dim if truncate_dim is not None else self.truncate_dim
            extract = enc.dense_extractor(output_value, dim, normalize_embeddings, to_cpu=to_numpy)
            results = self._run_batches(inputs, forward_kwargs=call_kwargs, extract=extract, **run)
            return enc.finish_dense(results, single, output_value=output_value, precision=precision,
                                    convert_to_tensor=to_tensor, convert_to_numpy=to_numpy, device=target)

    def _prepare_device(self, device: str | torch.device | None) -> torch.device:
        if device is None:
            return self.device
        target = torch.empty(0, device=device).device
        if any(t.device != target for t in self.parameters()):
            self.to(target)
        return target

    def encode_query(self, inputs: Any, prompt_name: str | None = None, prompt: str | None = None,
                     **kwargs: Any) -> Any:
        """``encode`` with ``task="query"`` and, when no prompt is given, the ``query`` prompt."""
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(inputs, prompt_name=prompt_name, prompt=prompt, task="query", **kwargs)

    def encode_document(self, inputs: Any, prompt_name: str | None = None, prompt: str | None = None,
                        **kwargs: Any) -> Any:
        """``encode`` with ``task="document"`` and the first prompt among document, passage, corpus."""
        if prompt_name is None and prompt is None:
            prompt_name = next((p for p in ("document", "passage", "corpus") if p in self.prompts), None)
        return self.encode(inputs, prompt_name=prompt_name, prompt=prompt, task="document", **kwargs)

    # ------------------------------------------------------------------------------------ similarity, io
    def similarity(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """Similarity matrix ``(len(embeddings1), len(embeddings2))`` with ``similarity_fn_name``."""
        return sim.SIMILARITY[self.similarity_fn_name](embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """Similarity of each pair ``(embeddings1[i], embeddings2[i])``."""
        return sim.SIMILARITY_PAIRWISE[self.similarity_fn_name](embeddings1, embeddings2)

    def decode(self, embeddings: torch.Tensor, top_k: int | None = None) -> list[Any]:
        """Sparse embedding(s) → ``(token, weight)`` pairs sorted by descending weight (a list of lists for
        a 2-D input), with the first module's tokenizer; ``top_k`` keeps the heaviest tokens only."""
        return sim.decode_sparse(embeddings, self.tokenizer, top_k)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Scores pairs — CrossEncoder models only (:class:`stpipe.cross_encoder.CrossEncoder`); an error here."""
        from stpipe.cross_encoder import not_a_cross_encoder

        raise not_a_cross_encoder(self, "predict")

    def rank(self, *args: Any, **kwargs: Any) -> Any:
        """Ranks documents — CrossEncoder models only (:class:`stpipe.cross_encoder.CrossEncoder`); an error here."""
        from stpipe.cross_encoder import not_a_cross_encoder

        raise not_a_cross_encoder(self, "rank")

    def save(self, path: str | os.PathLike, safe_serialization: bool = True, *, overwrite: str = "model") -> None:
        """Save in sentence-transformers 6.2's directory layout (atomically; see ``stpipe.formats.st``).

        ``overwrite="model"`` replaces only a directory that is exactly a saved model; ``"force"`` also leftover
        model files. Other files are never deleted: the save refuses and names them."""
        from stpipe.formats.st import save

        save(self, path, safe_serialization=safe_serialization, overwrite=overwrite)
