"""``Dense``: a linear layer plus an activation, on one feature (the seed's ``Dense``).

``y = act(W x + b)``; with ``use_residual`` (sentence-transformers 6.2) ``y += x`` when
``in_features == out_features``, otherwise ``y += R x`` with a bias-free ``residual`` Linear. Works on the
last dimension, so it also applies to ``token_embeddings``.

Files: ``config.json`` (``activation_function`` saved as a dotted torch class path; ``use_residual``
only when true) and ``model.safetensors`` (``linear.weight``, ``linear.bias``, ``residual.weight``).

>>> import torch
>>> d = Dense(4, 2, activation_function="identity", init_weight=[[1.0] * 4, [0.0] * 4], init_bias=[0.0, 1.0])
>>> d({"sentence_embedding": torch.ones(1, 4)})["sentence_embedding"].tolist()
[[4.0, 1.0]]
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, Self

import torch
from torch import nn

from stpipe.contracts.dense import DENSE
from stpipe.errors import LoadError
from stpipe.modules.activations import activation_name, resolve_activation
from stpipe.modules.module import Module

logger = logging.getLogger(__name__)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _as_tensor(name: str, value: Any, shape: tuple[int, ...]) -> torch.Tensor:
    t = value.detach().clone() if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float32)
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(t.shape)}")
    return t


class Dense(Module):
    """Feed-forward layer (``nn.Linear`` + activation) applied to ``features[module_input_name]``."""

    contract = DENSE
    config_keys = list(DENSE.config_keys)
    describe = staticmethod(DENSE.describe)  # one static description, shared with validation

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation_function: Callable[[torch.Tensor], torch.Tensor] | str | None = nn.Tanh(),  # noqa: B008
        init_weight: torch.Tensor | list | None = None,
        init_bias: torch.Tensor | list | None = None,
        module_input_name: str = "sentence_embedding",
        module_output_name: str | None = None,
        use_residual: bool = False,
    ) -> None:
        super().__init__()
        self.in_features = _positive_int("in_features", in_features)
        self.out_features = _positive_int("out_features", out_features)
        self.bias = bool(bias)
        self.activation_function = resolve_activation(activation_function)
        if not isinstance(module_input_name, str) or not module_input_name:
            raise ValueError(f"module_input_name must be a non-empty string, got {module_input_name!r}")
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name or module_input_name
        self.use_residual = bool(use_residual)
        self.linear = nn.Linear(self.in_features, self.out_features, bias=self.bias)
        if self.use_residual and self.in_features != self.out_features:
            self.residual = nn.Linear(self.in_features, self.out_features, bias=False)
        if init_weight is not None:
            self.linear.weight = nn.Parameter(_as_tensor("init_weight", init_weight, (out_features, in_features)))
        if init_bias is not None:
            if not self.bias:
                raise ValueError("init_bias was given but bias=False")
            self.linear.bias = nn.Parameter(_as_tensor("init_bias", init_bias, (out_features,)))

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if self.module_input_name not in features:
            raise KeyError(f"Dense expects the feature '{self.module_input_name}' (module_input_name); "
                           f"available features: {sorted(features)}")
        x = features[self.module_input_name]
        y = self.activation_function(self.linear(x))
        if self.use_residual:
            y = y + (self.residual(x) if hasattr(self, "residual") else x)
        features[self.module_output_name] = y
        return features

    def get_embedding_dimension(self) -> int:
        return self.out_features

    def get_config_dict(self) -> dict[str, Any]:
        config = {
            "in_features": self.in_features, "out_features": self.out_features, "bias": self.bias,
            "activation_function": activation_name(self.activation_function),
            "module_input_name": self.module_input_name, "module_output_name": self.module_output_name,
        }
        if self.use_residual:  # 6.2 leaves the key out when false, so older releases can read the file
            config["use_residual"] = True
        return config

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             init_defaults: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
             allow_pickle: bool = False, **kwargs: Any) -> Self:
        """Saved config + weights; keys the constructor does not know are dropped with a warning."""
        hub = dict(token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
        config = cls.load_config(model_name_or_path, subfolder, **hub)
        for k, v in (init_defaults or {}).items():
            config.setdefault(k, v)
        config.update(overrides or {})
        known = set(inspect.signature(cls.__init__).parameters) - {"self"}
        for key in [k for k in config if k not in known]:
            logger.warning("Dense: ignoring unknown config key %r", key)
            config.pop(key)
        try:
            module = cls(**config)
        except (TypeError, ValueError) as exc:
            raise LoadError(f"invalid Dense config: {exc}", path=str(model_name_or_path) + f"/{subfolder}") from exc
        cls.load_torch_weights(model_name_or_path, subfolder, model=module, allow_pickle=allow_pickle, **hub)
        return module
