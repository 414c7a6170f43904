"""The batch loop of :class:`stpipe.pipeline.Pipeline` (a mixin): preprocess → forward over length-sorted
batches, the device an encode call runs on, and ``encode_query`` / ``encode_document``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm.autonotebook import tqdm

from stpipe import encoding as enc
from stpipe.modules.modality import check_batch_modality


def is_router(module: Any) -> bool:
    """Routers receive every encode keyword argument (sentence-transformers' rule)."""
    return any(c.__name__ in ("Router", "Asym") for c in type(module).__mro__)


class BatchRunner:
    """What :class:`~stpipe.pipeline.Pipeline` runs each ``encode`` with (``self`` is the Pipeline)."""

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
