"""Activation functions by name, for :class:`~stpipe.modules.dense.Dense` (YAML gives strings).

Only classes that live in ``torch.nn`` are ever resolved; nothing is imported because a config file
named it. Accepted spellings:

* a short name, case-insensitive: ``tanh``, ``identity``, ``relu``, ``gelu``, ``sigmoid``, ``silu``,
  ``softmax``, ``leaky_relu`` … (any activation class of ``torch.nn``, plus a few aliases);
* a dotted class path as sentence-transformers writes it: ``torch.nn.Tanh`` or
  ``torch.nn.modules.activation.Tanh``.

The saved form is always the dotted path of the class (sentence-transformers 6.2's format).

>>> resolve_activation("relu")
ReLU()
>>> activation_name(resolve_activation("torch.nn.Tanh"))
'torch.nn.modules.activation.Tanh'
>>> resolve_activation(None)
Identity()
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from torch import nn

from stpipe.errors import did_you_mean

#: extra short names (besides every activation class name of torch.nn, lower-cased)
ALIASES: dict[str, str] = {
    "leaky_relu": "LeakyReLU", "swish": "SiLU", "linear": "Identity", "none": "Identity",
    "log_sigmoid": "LogSigmoid", "log_softmax": "LogSoftmax", "hard_tanh": "Hardtanh",
    "hard_sigmoid": "Hardsigmoid", "hard_swish": "Hardswish",
}


@cache
def short_names() -> dict[str, str]:
    """Short (lower-case) name → torch.nn class name, for every activation torch.nn defines."""
    out: dict[str, str] = {"identity": "Identity"}
    for name, obj in vars(nn.modules.activation).items():
        if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == nn.modules.activation.__name__:
            out[name.lower()] = name
    out.update(ALIASES)
    return out


def activation_name(act: nn.Module) -> str:
    """The dotted class path written to ``config.json`` (``torch.nn.modules.activation.Tanh``)."""
    cls = type(act)
    return f"{cls.__module__}.{cls.__qualname__}"


def _torch_nn_class(name: str) -> type[nn.Module] | None:
    """The torch.nn class a dotted name refers to, without importing anything new."""
    if not name.startswith("torch.nn."):
        return None
    cls_name = name.rsplit(".", 1)[-1]
    cls = getattr(nn, cls_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        return None
    if name not in (f"torch.nn.{cls_name}", f"{cls.__module__}.{cls.__qualname__}"):
        return None
    return cls


def _unknown(value: str) -> ValueError:
    if "." in value:
        hint = did_you_mean("torch.nn." + value.rsplit(".", 1)[-1],
                            [f"torch.nn.{c}" for c in sorted(set(short_names().values()))])
    else:
        hint = did_you_mean(value.lower(), short_names())
    return ValueError(
        f"unknown activation_function '{value}': expected a torch.nn activation, as a short name "
        f"(e.g. 'tanh', 'relu', 'gelu', 'identity') or a dotted class path (e.g. 'torch.nn.Tanh')"
        + (f"; {hint}" if hint else ""))


def resolve_activation(value: Any) -> nn.Module:
    """An ``nn.Module`` for ``value`` (instance, torch.nn class, name, or None → Identity)."""
    if value is None:
        return nn.Identity()
    if isinstance(value, nn.Module):
        return value
    if inspect.isclass(value) and issubclass(value, nn.Module):
        cls: type[nn.Module] | None = value
    elif isinstance(value, str):
        key = value.strip()
        short = short_names().get(key.lower())
        cls = getattr(nn, short) if short else _torch_nn_class(key)
        if cls is None:
            raise _unknown(value)
    else:
        raise ValueError(f"activation_function must be a torch.nn.Module, a torch.nn class name or None, "
                         f"not {type(value).__name__} ({value!r})")
    try:
        return cls()
    except TypeError as exc:
        raise ValueError(f"activation_function '{cls.__name__}' cannot be created without arguments ({exc}); "
                         "pass an nn.Module instance instead") from None
