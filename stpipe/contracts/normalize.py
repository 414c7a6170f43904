"""The ``Normalize`` contract."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stpipe.contracts.base import Contract, FeatureIO

PARAMS = ("module_input_name", "module_output_name")


def describe(params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
    """Same feature, same dimension."""
    src = params.get("module_input_name") or "sentence_embedding"
    dst = params.get("module_output_name") or src
    # at run time a missing input is a no-op (as in sentence-transformers); statically it is almost
    # always a typo in module_input_name, so the graph check is told that the feature is read
    return FeatureIO(consumes={src: "module_input_name"}, produces={dst: upstream.get(src)})


NORMALIZE = Contract(name="Normalize", describe=describe, params=PARAMS, config_keys=PARAMS)
