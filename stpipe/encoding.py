"""Stateless machinery behind :meth:`stpipe.pipeline.Pipeline.encode`.

The Pipeline owns the state (modules, prompts, device, defaults) and the loop that runs its modules; this
module holds everything around that loop that depends only on its arguments, in the order ``encode`` uses it:

1. arguments: :func:`check_encode_kwargs`, :func:`resolve_prompt`, :func:`dense_flags`, :func:`sparse_flags`;
   inputs: :func:`as_input_list` (one input or a batch?), :func:`input_length` (the sort key),
   :func:`unsupported_modality` and :func:`call_preprocess` (the first module's ``preprocess``);
2. batching: :func:`group_by_modality` (mixed-modality calls into a routing pipeline),
   :func:`length_sorted_batches` (a size estimate), and for plain texts :func:`token_batches` (token counts,
   an optional ``max_batch_tokens`` budget) with :func:`pad_batch` (padding to a batch's longest input);
3. per-batch output: :func:`dense_extractor` / :func:`sparse_extractor` build the ``extract(out, n)``
   callable that turns one batch's output features into n per-input results (truncate → normalise, or
   top-k → sparse);
4. whole-call output: :func:`finish_dense` (quantise → convert) and :func:`finish_sparse` (stack → convert),
   with :func:`check_sparse_options` for the options a SparseEncoder rejects.

>>> as_input_list("one sentence")
(['one sentence'], True)
>>> [b for b in length_sorted_batches(["a", "ccc", "bb"], [0, 1, 2], batch_size=2)]
[[1, 2], [0]]
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

from stpipe import similarity as sim
from stpipe.modules.modality import (
    Modality,
    check_modality,
    infer_modality,
    sample_modalities,
    unsupported_modality_error,
)

logger = logging.getLogger("stpipe")

ALWAYS_ALLOWED_KWARGS = frozenset({"task", "processing_kwargs"})
"""``encode`` keyword arguments accepted whether or not a module's forward takes them."""

Extract = Callable[[dict[str, Any], int], list[Any]]
"""``extract(out_features, n)`` → n per-input results of one batch."""


# ---------------------------------------------------------------------------------------------- arguments
def check_encode_kwargs(kwargs: Mapping[str, Any], model_kwargs: list[str], modality: Any) -> Modality | None:
    """Reject ``encode`` kwargs no module uses (``model_kwargs``), an invalid ``modality=``, and ``modality=``
    without a router; returns the modality normalised (``"image+text"`` / ``["text", "image"]`` → a sorted tuple)."""
    unused = sorted(set(kwargs) - set(model_kwargs) - ALWAYS_ALLOWED_KWARGS)
    if unused:
        valid = (f"the valid additional keyword arguments are: {model_kwargs}" if model_kwargs
                 else "this pipeline does not accept any additional keyword arguments")
        raise ValueError(f"encode() got keyword arguments that no module of this pipeline uses: {unused}; "
                         f"{valid} (plus 'task' and 'processing_kwargs').")
    modality = check_modality(modality)
    if modality is not None and "modality" not in model_kwargs:
        raise ValueError("modality= is only accepted by pipelines with a module that routes by modality "
                         "(a Router); this pipeline infers the modality from the inputs.")
    return modality


def check_truncate_dim(truncate_dim: Any) -> int | None:
    """``truncate_dim``: None or a positive integer (0 would silently return empty embeddings)."""
    if truncate_dim is not None and (isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int)
                                     or truncate_dim < 1):
        raise ValueError(f"truncate_dim must be a positive integer (the number of leading dimensions to keep) or "
                         f"None, got {truncate_dim!r}")
    return truncate_dim


def resolve_prompt(prompts: Mapping[str, str], default_prompt_name: str | None, prompt: str | None,
                   prompt_name: str | None) -> str | None:
    """The prompt text: ``prompt`` wins over ``prompt_name`` (with a warning), then the default prompt."""
    if prompt is not None:
        if prompt_name is not None:
            logger.warning("Provide either a `prompt`, a `prompt_name`, or neither, but not both. "
                           "Ignoring the `prompt_name` in favor of `prompt`.")
        return prompt
    if prompt_name is not None:
        if prompt_name not in prompts:
            raise ValueError(f"Prompt name '{prompt_name}' not found in the configured prompts dictionary "
                             f"with keys {list(prompts)!r}.")
        return prompts[prompt_name]
    if default_prompt_name is not None:
        return prompts.get(default_prompt_name)
    return None


def dense_flags(output_value: str | None, convert_to_numpy: bool | None,
                convert_to_tensor: bool | None) -> tuple[bool, bool]:
    """``(to_numpy, to_tensor)`` for a dense pipeline: numpy by default, a tensor wins over numpy, and
    outputs other than sentence embeddings are never stacked (both False)."""
    to_numpy = True if convert_to_numpy is None else convert_to_numpy
    to_tensor = bool(convert_to_tensor)
    if to_tensor:
        to_numpy = False
    if output_value != "sentence_embedding":
        to_tensor = to_numpy = False
    return to_numpy, to_tensor


# ---------------------------------------------------------------------------------------------- inputs
def _is_message(x: Any) -> bool:
    return isinstance(x, dict) and "role" in x and "content" in x


def is_single_input(inputs: Any) -> bool:
    """A conversation (list of role/content dicts) is one input; lists, tuples, numpy str/object arrays,
    datasets Columns and generators are batches; anything else is one input."""
    if isinstance(inputs, list) and inputs and _is_message(inputs[0]):
        return True
    if isinstance(inputs, (list, tuple)) or inspect.isgenerator(inputs) or type(inputs).__name__ == "Column":
        return False
    return not (isinstance(inputs, np.ndarray) and inputs.ndim >= 1 and inputs.dtype.kind in ("U", "O"))


def as_input_list(inputs: Any) -> tuple[list[Any], bool]:
    """``(inputs as a list, whether the caller passed one input)``."""
    if is_single_input(inputs):
        return [inputs], True
    if isinstance(inputs, list):
        return inputs, False
    return (inputs.tolist() if isinstance(inputs, np.ndarray) else list(inputs)), False


def unsupported_modality(modality: Any, modalities: list[Any], model_type: str,
                         inputs: list[Any] | None = None) -> ValueError:
    """The error for a batch whose modality the first module does not accept (sentence-transformers' words;
    ``inputs`` tell a mixed batch from chat-style inputs, both inferred as 'message')."""
    samples = None if inputs is None else sample_modalities(inputs)
    return unsupported_modality_error(samples, modality, modalities, f"{model_type} model")


def call_preprocess(module: Any, inputs: list[Any], prompt: str | None, **kwargs: Any) -> dict[str, Any]:
    """``module.preprocess(inputs, prompt=prompt, **kwargs)``; for an old-style module without a ``prompt``
    argument, the prompt is prepended to each text (to the first element of a tuple) instead."""
    params = inspect.signature(module.preprocess).parameters
    if "prompt" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return module.preprocess(list(inputs), prompt=prompt, **kwargs)
    if prompt:
        inputs = [(prompt + x[0], *x[1:]) if isinstance(x, tuple) else prompt + x if isinstance(x, str) else x
                  for x in inputs]
    return module.preprocess(list(inputs), **kwargs)


def input_length(x: Any) -> int:
    """A size estimate used only to sort inputs into batches of similar length."""
    if isinstance(x, str):
        return len(x)
    if isinstance(x, (tuple, list)) and x and not _is_message(x[0]):
        return sum(input_length(s) for s in x)
    if isinstance(x, list) and x and _is_message(x[0]):
        return sum(input_length(m) for m in x)
    if isinstance(x, dict):
        if "array" in x:
            return input_length(x["array"])
        if "content" in x:
            c = x["content"]
            if isinstance(c, str):
                return len(c)
            if isinstance(c, list):
                return sum(len(str(i.get("text", ""))) for i in c if isinstance(i, dict))
            return 1
        return sum(input_length(v) for v in x.values())
    if isinstance(x, torch.Tensor):
        return x.nelement()
    if isinstance(x, np.ndarray):
        return int(x.size)
    size = getattr(x, "size", None)  # a PIL image
    if isinstance(size, tuple) and len(size) == 2 and all(isinstance(s, int) for s in size):
        return size[0] * size[1]
    return 1


# ---------------------------------------------------------------------------------------------- batching
def group_by_modality(inputs: list[Any], supported: list[Any] | None = None) -> dict[Any, list[int]]:
    """Input indices by inferred modality (None where it cannot be inferred; image paths are images when
    ``supported`` includes images); ``{None: all indices}`` when every input falls into the same group."""
    found: dict[Any, list[int]] = {}
    for i, x in enumerate(inputs):
        try:
            key = infer_modality(x, supported)
        except ValueError:
            key = None
        found.setdefault(key, []).append(i)
    return found if len(found) > 1 else {None: list(range(len(inputs)))}


def length_sorted_batches(inputs: list[Any], indices: list[int], batch_size: int) -> Iterator[list[int]]:
    """``indices`` sorted by descending :func:`input_length` (stable), cut into batches of ``batch_size``."""
    order = np.argsort([-input_length(inputs[i]) for i in indices])
    ordered = [indices[j] for j in order]
    for start in range(0, len(ordered), batch_size):
        yield ordered[start:start + batch_size]


PADDING_KEYS = frozenset({"padding", "return_tensors", "pad_to_multiple_of", "padding_side"})
"""Processor arguments that shape padding: a caller setting them gets the general (per-batch) path."""


Pretokenized = tuple[dict[str, list[list[int]]], dict[str, Any], dict[str, int], str]
"""``(token columns: key → one unpadded list per input, other features, pad value per key, padding side)``."""


def pretokenized(first: Any, preprocess: Callable[..., dict[str, Any]], inputs: list[Any], prompt: str | None,
                 kwargs: Mapping[str, Any]) -> Pretokenized | None:
    """Plain texts through a tokenizer-backed first module (a Transformer): the whole call tokenised once,
    unpadded, by ``preprocess`` (the module's own, through the pipeline); None where the general path applies
    (other inputs, chat models, padding set by the caller or the module's ``processing_kwargs``)."""
    config = getattr(first, "modality_config", None)
    tok = getattr(first, "tokenizer", None) if isinstance(config, Mapping) else None
    if (tok is None or "text" not in config or "message" in config or getattr(tok, "pad_token_id", None) is None
            or not inputs or not all(type(x) is str for x in inputs)):
        return None
    user = kwargs.get("processing_kwargs") or {}
    if not isinstance(user, Mapping) or not all(isinstance(v, Mapping) for v in user.values()):
        return None  # malformed: the module's preprocess names the problem
    for pk in (getattr(first, "processing_kwargs", None) or {}, user):
        if any(set(pk.get(section) or {}) & PADDING_KEYS for section in ("common", "text")):
            return None
    pk = {**user, "common": {**(user.get("common") or {}), "return_tensors": None},
          "text": {**(user.get("text") or {}), "padding": False}}
    out = preprocess(inputs, prompt=prompt, **{**kwargs, "processing_kwargs": pk})
    n = len(inputs)
    columns = {k: v for k, v in out.items() if isinstance(v, list) and len(v) == n and isinstance(v[0], list)}
    if "input_ids" not in columns:
        return None
    rest = {k: v for k, v in out.items() if k not in columns}
    pads = {"input_ids": tok.pad_token_id, "token_type_ids": getattr(tok, "pad_token_type_id", 0),
            "special_tokens_mask": 1}
    return columns, rest, pads, getattr(tok, "padding_side", "right")


def token_batches(lengths: list[int], batch_size: int, max_batch_tokens: int | None = None) -> list[list[int]]:
    """Input indices sorted by descending token count (stable), cut into batches of at most ``batch_size``
    inputs and — with ``max_batch_tokens`` — at most that many tokens once padded to the batch's longest
    input (a single input longer than the budget makes a batch of its own)."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable").tolist()
    batches, start = [], 0
    while start < len(order):
        size = batch_size
        if max_batch_tokens is not None:
            size = max(1, min(batch_size, max_batch_tokens // max(1, lengths[order[start]])))
        batches.append(order[start:start + size])
        start += size
    return batches


def check_max_batch_tokens(max_batch_tokens: Any) -> int | None:
    """``max_batch_tokens``: None or a positive integer."""
    if max_batch_tokens is not None and (isinstance(max_batch_tokens, bool) or not isinstance(max_batch_tokens, int)
                                         or max_batch_tokens < 1):
        raise ValueError(f"max_batch_tokens must be a positive integer (padded tokens per batch) or None, got "
                         f"{max_batch_tokens!r}")
    return max_batch_tokens


def pad_batch(columns: Mapping[str, list[list[int]]], batch_ix: list[int], pad_values: Mapping[str, int],
              side: str = "right") -> dict[str, torch.Tensor]:
    """One batch of unpadded token columns (``input_ids``, ``attention_mask`` …: one list per input) as int64
    tensors padded to the batch's longest input, on ``side`` ("right"/"left"); padding uses ``pad_values[key]``
    (0 for keys not named)."""
    width = max(len(columns["input_ids"][i]) for i in batch_ix)
    out = {}
    for key, rows in columns.items():
        arr = np.full((len(batch_ix), width), pad_values.get(key, 0), dtype=np.int64)
        for r, i in enumerate(batch_ix):
            seq = rows[i]
            if side == "left":
                arr[r, width - len(seq):] = seq
            else:
                arr[r, :len(seq)] = seq
        out[key] = torch.from_numpy(arr)
    return out


def feature(out: Mapping[str, Any], key: str) -> Any:
    """``out[key]``, or a ValueError naming the features the pipeline did produce."""
    if key not in out:
        raise ValueError(f"the pipeline produced no {key!r}; features available: {sorted(out)}")
    return out[key]


# ---------------------------------------------------------------------------------------------- dense output
def dense_extractor(output_value: str | None, truncate_dim: int | None, normalize: bool, to_cpu: bool) -> Extract:
    """Per batch: truncate sentence embeddings, then give per input the trimmed token embeddings
    (``"token_embeddings"``), a dict of features (``None``), or the (normalised) ``output_value`` rows."""

    def extract(out: dict[str, Any], n: int) -> list[Any]:
        if truncate_dim is not None and "sentence_embedding" in out:
            out["sentence_embedding"] = out["sentence_embedding"][..., :truncate_dim]
        if output_value == "token_embeddings":
            rows = []
            for emb, mask in zip(feature(out, "token_embeddings"), feature(out, "attention_mask"), strict=True):
                nonzero = torch.nonzero(mask).flatten()
                last = int(nonzero[-1]) if len(nonzero) else 0
                rows.append(emb[: last + 1])
            return rows
        if output_value is None:
            return [{k: v[i] if isinstance(v, torch.Tensor) and v.ndim > 0 and v.shape[0] == n else v
                     for k, v in out.items()} for i in range(n)]
        emb = feature(out, output_value)
        if normalize:
            emb = torch.nn.functional.normalize(emb, p=2, dim=1)
        if to_cpu:
            emb = emb.cpu()
        return list(emb)

    return extract


def finish_dense(results: list[Any], single: bool, *, output_value: str | None, precision: str,
                 convert_to_tensor: bool, convert_to_numpy: bool, device: torch.device) -> Any:
    """Whole call: quantise the stacked sentence embeddings to ``precision``, then convert (tensor, numpy
    array or list of tensors); other outputs are returned as the per-input list."""
    if output_value != "sentence_embedding":
        if precision != "float32":
            raise ValueError(f"precision={precision!r} applies to sentence embeddings only, not to "
                             f"output_value={output_value!r}")
        return results[0] if single else results
    stacked: Any = torch.stack(results) if results else torch.tensor([], device=device)
    if stacked.is_floating_point() and not (finite := torch.isfinite(stacked).all(dim=-1)).all():
        bad = (~finite).nonzero().flatten().tolist()
        warnings.warn(f"the model produced non-finite embeddings (NaN or inf) for {len(bad)} of {len(results)} "
                      f"inputs (first: {bad[:5]}); its weights may be broken (a diverged training?)", RuntimeWarning,
                      stacklevel=3)
    if len(results) and precision != "float32":
        stacked = sim.quantize_embeddings(stacked, precision)  # type: ignore[arg-type]
    if convert_to_tensor:
        stacked = torch.as_tensor(stacked)
    elif convert_to_numpy:
        if not len(results):
            stacked = np.array([])
        elif isinstance(stacked, torch.Tensor):
            stacked = (stacked.float() if stacked.dtype == torch.bfloat16 else stacked).cpu().numpy()
    else:
        stacked = list(torch.from_numpy(stacked) if isinstance(stacked, np.ndarray) else stacked)
    return stacked[0] if single else stacked
