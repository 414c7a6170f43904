"""The ``Dense`` contract: activation names (torch-free: the class names of ``torch.nn``'s activations, a test
checks them against torch), weight-shape parameters, and the static description.

>>> activation_class("relu"), activation_class("torch.nn.modules.activation.GELU"), activation_class(None)
('ReLU', 'GELU', 'Identity')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stpipe.contracts.base import Contract, FeatureIO
from stpipe.errors import did_you_mean

#: the activation classes ``torch.nn.modules.activation`` defines (a test compares with the installed torch)
ACTIVATION_CLASSES = (
    "CELU", "ELU", "GELU", "GLU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh", "LeakyReLU", "LogSigmoid",
    "LogSoftmax", "Mish", "MultiheadAttention", "PReLU", "RReLU", "ReLU", "ReLU6", "SELU", "SiLU", "Sigmoid",
    "Softmax", "Softmax2d", "Softmin", "Softplus", "Softshrink", "Softsign", "Tanh", "Tanhshrink", "Threshold",
)
#: activation classes that cannot be created without arguments (not usable by name)
NEEDS_ARGUMENTS = ("MultiheadAttention", "Threshold")
#: torch.nn class name → the module torch defines it in (the saved dotted path)
ACTIVATION_MODULES: dict[str, str] = {**{c: "torch.nn.modules.activation" for c in ACTIVATION_CLASSES},
                                      "Identity": "torch.nn.modules.linear"}
#: extra short names (besides every class name, lower-cased)
ALIASES: dict[str, str] = {
    "leaky_relu": "LeakyReLU", "swish": "SiLU", "linear": "Identity", "none": "Identity",
    "log_sigmoid": "LogSigmoid", "log_softmax": "LogSoftmax", "hard_tanh": "Hardtanh",
    "hard_sigmoid": "Hardsigmoid", "hard_swish": "Hardswish",
}
SHORT_NAMES: dict[str, str] = {**{c.lower(): c for c in ACTIVATION_MODULES}, **ALIASES}
PARAMS = ("in_features", "out_features", "bias", "activation_function", "init_weight", "init_bias",
          "module_input_name", "module_output_name", "use_residual")
CONFIG_KEYS = ("in_features", "out_features", "bias", "activation_function", "module_input_name",
               "module_output_name", "use_residual")


def unknown_activation(value: str) -> ValueError:
    """The error for a name that is no torch.nn activation (message; hint after ``"; "``)."""
    if "." in value:
        names = [f"torch.nn.{c}" for c in sorted(ACTIVATION_MODULES)]
        hint = did_you_mean("torch.nn." + value.rsplit(".", 1)[-1], names)
    else:
        hint = did_you_mean(value.lower(), SHORT_NAMES)
    return ValueError(
        f"unknown activation_function '{value}': expected a torch.nn activation, as a short name "
        f"(e.g. 'tanh', 'relu', 'gelu', 'identity') or a dotted class path (e.g. 'torch.nn.Tanh')"
        + (f"; {hint}" if hint else ""))


def activation_class(value: str | None) -> str:
    """The torch.nn class name an activation name means (None → Identity); ValueError for anything else.
    Accepts a short name (case-insensitive) or ``torch.nn.<Class>`` / ``<defining module>.<Class>``."""
    if value is None:
        return "Identity"
    key = value.strip()
    cls = SHORT_NAMES.get(key.lower()) or key.rsplit(".", 1)[-1]
    if key.lower() in SHORT_NAMES:
        key = f"torch.nn.{cls}"
    if cls not in ACTIVATION_MODULES or key not in (f"torch.nn.{cls}", f"{ACTIVATION_MODULES[cls]}.{cls}"):
        raise unknown_activation(value)
    if cls in NEEDS_ARGUMENTS:
        raise ValueError(f"activation_function '{cls}' cannot be created without arguments; pass an nn.Module "
                         "instance instead")
    return cls


def describe(params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
    """Reads ``module_input_name`` (of ``in_features``), writes ``module_output_name`` of ``out_features``."""
    src = params.get("module_input_name") or "sentence_embedding"
    dst = params.get("module_output_name") or src
    io = FeatureIO(consumes={src: "module_input_name"}, produces={dst: params.get("out_features")})
    if isinstance(params.get("in_features"), int):
        io.requires_dim.append((src, params["in_features"], "in_features"))
    return io


def config_dict(saved: Mapping[str, Any]) -> dict[str, Any]:
    """``Dense.get_config_dict()`` of the module loaded from these saved parameters (Tanh when none is saved)."""
    act = activation_class(saved.get("activation_function", "Tanh"))
    source = saved.get("module_input_name", "sentence_embedding")
    out = {"in_features": saved.get("in_features"), "out_features": saved.get("out_features"),
           "bias": saved.get("bias", True), "activation_function": f"{ACTIVATION_MODULES[act]}.{act}",
           "module_input_name": source, "module_output_name": saved.get("module_output_name") or source}
    if saved.get("use_residual"):
        out["use_residual"] = True
    return out


DENSE = Contract(name="Dense", describe=describe, params=PARAMS, config_keys=CONFIG_KEYS, config_dict=config_dict,
                 shape_params={"in_features": (("linear.weight",), 1), "out_features": (("linear.weight",), 0)})
