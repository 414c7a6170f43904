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


def config_dict(saved: Mapping[str, Any]) -> dict[str, Any]:
    """``Normalize.get_config_dict()`` of the module loaded from these saved parameters."""
    src = saved.get("module_input_name", "sentence_embedding")
    return {"module_input_name": src, "module_output_name": saved.get("module_output_name") or src}


NORMALIZE = Contract(name="Normalize", describe=describe, params=PARAMS, config_keys=PARAMS, config_dict=config_dict)
