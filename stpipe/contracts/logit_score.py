"""The ``LogitScore`` contract: a causal LM's logits at the last position → one score per input.

>>> LOGIT_SCORE.describe({"true_token_id": 3}, {"causal_logits": 100}).produces
{'scores': 1}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stpipe.contracts.base import Contract, FeatureIO

PARAMS = ("true_token_id", "false_token_id", "module_input_name")


def describe(params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
    """Reads ``causal_logits`` (or ``module_input_name``), writes ``scores`` of width 1."""
    src = params.get("module_input_name") or "causal_logits"
    return FeatureIO(consumes={src: "module_input_name"}, produces={"scores": 1})


LOGIT_SCORE = Contract(name="LogitScore", describe=describe, params=PARAMS, config_keys=PARAMS,
                       config_dict=lambda saved: {"true_token_id": saved.get("true_token_id"),
                                                  "false_token_id": saved.get("false_token_id"),
                                                  "module_input_name": saved.get("module_input_name", "causal_logits")})
