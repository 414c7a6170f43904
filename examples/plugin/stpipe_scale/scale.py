"""``Scale``: multiply one feature by a factor, fixed or learnable.

Everything stpipe needs from a module is here: the constructor's signature (stpipe derives the node schema
from it: ``factor`` is a number, ``learnable`` a boolean, an unknown key gets a "did you mean"), a static
``describe`` (what the module reads and writes, so a whole graph is checked before any weight loads),
``forward``, and ``save``/``load`` in sentence-transformers' layout (``config.json`` + ``model.safetensors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import torch

import stpipe


class Scale(stpipe.Module):
    """``features[feature] *= factor``; with ``learnable: true`` the factor is a trainable parameter."""

    config_keys = ["factor", "learnable", "feature"]

    def __init__(self, factor: float = 1.0, learnable: bool = False, feature: str = "sentence_embedding") -> None:
        super().__init__()
        if not isinstance(feature, str) or not feature:
            raise ValueError(f"feature must be a non-empty string, got {feature!r}")
        self.feature = feature
        self.learnable = bool(learnable)
        self.scale = torch.nn.Parameter(torch.tensor(float(factor)), requires_grad=self.learnable)

    @property
    def factor(self) -> float:
        return float(self.scale.detach())

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features[self.feature] = features[self.feature] * self.scale
        return features

    @classmethod
    def describe(cls, params: Mapping[str, Any], upstream: Mapping[str, int | None],
                 ctx: Any = None) -> stpipe.FeatureIO:
        """Reads ``feature`` (named by the ``feature`` parameter) and writes it back with the same width."""
        feature = params.get("feature") or "sentence_embedding"
        return stpipe.FeatureIO(consumes={feature: "feature"}, produces={feature: upstream.get(feature)})

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)  # config.json: factor, learnable, feature
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)  # the (trained) factor

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             overrides: Mapping[str, Any] | None = None, **kwargs: Any) -> Self:
        """The saved config (a model definition's own keys win), then the saved weights."""
        hub = dict(token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
        config = {k: v for k, v in cls.load_config(model_name_or_path, subfolder, **hub).items()
                  if k in cls.config_keys}
        module = cls(**{**config, **(overrides or {})})
        if "factor" in (overrides or {}):
            return module  # the definition sets the factor: do not overwrite it with the saved one
        return cls.load_torch_weights(model_name_or_path, subfolder, model=module, **hub)
