"""``LogitScore``: a relevance score from a causal language model's logits (sentence-transformers 6.2's
``cross_encoder.modules.LogitScore``, the module after a ``text-generation`` / ``any-to-any`` Transformer in a
reranker built on a causal LM).

The logits at the last position (the Transformer pads on the left, so it is a real token; with the default
``logits_to_keep=1`` the input is (batch, 1, vocab)) give ``logit[true_token_id]``, or the log-odds
``logit[true_token_id] - logit[false_token_id]`` when ``false_token_id`` is set. Output: ``scores`` (batch, 1).
Saved as ``config.json`` (``true_token_id``, ``false_token_id``, ``module_input_name``); no weights.

>>> import torch
>>> logits = torch.tensor([[[0.0, 2.0, 0.5]], [[1.0, -1.0, 3.0]]])
>>> LogitScore(1, 2)({"causal_logits": logits})["scores"].tolist()
[[1.5], [-4.0]]
"""

from __future__ import annotations

from typing import Any

from stpipe.contracts.logit_score import LOGIT_SCORE
from stpipe.modules.module import ConfigModule


def _token_id(name: str, value: Any, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a vocabulary id (an integer >= 0){' or null' if optional else ''}, "
                         f"got {value!r}")
    return value


class LogitScore(ConfigModule):
    """Logits of chosen vocabulary tokens at the last position → ``scores``."""

    contract = LOGIT_SCORE
    config_keys = list(LOGIT_SCORE.config_keys)
    describe = staticmethod(LOGIT_SCORE.describe)  # one static description, shared with validation

    def __init__(self, true_token_id: int, false_token_id: int | None = None,
                 module_input_name: str = "causal_logits") -> None:
        super().__init__()
        self.true_token_id = _token_id("true_token_id", true_token_id, optional=False)
        self.false_token_id = _token_id("false_token_id", false_token_id, optional=True)
        if not isinstance(module_input_name, str) or not module_input_name:
            raise ValueError(f"module_input_name must be a non-empty string, got {module_input_name!r}")
        self.module_input_name = module_input_name

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if self.module_input_name not in features:
            raise ValueError(f"LogitScore reads '{self.module_input_name}', which the modules before it did not "
                             "produce; put it after a Transformer with transformer_task text-generation or any-to-any")
        logits = features[self.module_input_name][:, -1]  # (batch, vocab) at the last (real) position
        vocab = logits.shape[-1]
        for name in ("true_token_id", "false_token_id"):
            tid = getattr(self, name)
            if tid is not None and tid >= vocab:
                raise ValueError(f"LogitScore.{name}={tid} is outside the model's vocabulary (size {vocab})")
        scores = logits[:, self.true_token_id]
        if self.false_token_id is not None:
            scores = scores - logits[:, self.false_token_id]
        features["scores"] = scores.unsqueeze(1)
        return features
