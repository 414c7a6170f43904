"""The causal tasks of ``Transformer`` (``text-generation``: ``AutoModelForCausalLM``; ``any-to-any``:
``AutoModelForMultimodalLM``), as sentence-transformers 6.2 runs them.

The tokenizer pads on the left (set when the module is built), so the last position of every row is a real
token: ``logits_to_keep`` (default 1; ``processing_kwargs: {text: {logits_to_keep: N}}``, 0 = all positions)
is passed to the model, which then returns logits of shape (batch, N, vocab) as ``causal_logits``. A
:class:`~stpipe.modules.logit_score.LogitScore` turns the last position into a score; a batch whose rows end
in padding is refused (someone changed the padding side after loading).
"""

from __future__ import annotations

from typing import Any

import torch


def set_left_padding(processor: Any) -> None:
    """Pad on the left: a multimodal processor pads through its tokenizer, a tokenizer itself."""
    if hasattr(processor, "padding_side"):
        processor.padding_side = "left"
    tok = getattr(processor, "tokenizer", None)
    if tok is not None:
        tok.padding_side = "left"


def logits_to_keep(pk: dict[str, dict[str, Any]]) -> int:
    """``processing_kwargs.text.logits_to_keep`` (default 1); ValueError unless a non-negative integer."""
    value = pk.get("text", {}).get("logits_to_keep", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"processing_kwargs.text.logits_to_keep must be a non-negative integer (1 = the last "
                         f"position, 0 = every position), got {value!r}")
    return value


def finish_causal(out: dict[str, Any], pk: dict[str, dict[str, Any]], processor: Any) -> None:
    """Check that every row ends in a real token and add ``logits_to_keep`` to the features (in place)."""
    keep = logits_to_keep(pk)
    mask = out.get("attention_mask")
    if isinstance(mask, torch.Tensor) and mask.ndim == 2 and mask.numel() and not bool(mask[:, -1].all()):
        rows = [int(i) for i in torch.nonzero(mask[:, -1] == 0).flatten()]
        sides = [pk.get(k, {}).get("padding_side") for k in ("text", "common")]
        side = next((s for s in sides if s not in (None, "left")), None)
        if side is not None:
            fix = f"processing_kwargs sets padding_side={side!r}: remove it or set it to 'left'"
        else:
            where = "processor.tokenizer" if hasattr(processor, "tokenizer") else "processor"
            fix = (f"the Transformer sets {where}.padding_side = 'left' when it is built, so it was changed "
                   f"afterwards: set it back to 'left'")
        raise ValueError(f"rows {rows} of this batch end in padding, but a causal transformer_task needs left "
                         f"padding so that the last position is a real token (logits_to_keep, LogitScore); {fix}")
    out["logits_to_keep"] = keep
