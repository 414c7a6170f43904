"""Activation functions by name, for :class:`~stpipe.modules.dense.Dense` (YAML gives strings).

Only classes that live in ``torch.nn`` are ever resolved; nothing is imported because a config file
named it. Accepted spellings:

* a short name, case-insensitive: ``tanh``, ``identity``, ``relu``, ``gelu``, ``sigmoid``, ``silu``,
  ``softmax``, ``leaky_relu`` … (any activation class of ``torch.nn``, plus a few aliases; the names are
  :mod:`stpipe.contracts.dense`'s, so validation accepts exactly these);
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

from stpipe.contracts.dense import ALIASES, SHORT_NAMES, activation_class  # noqa: F401 - ALIASES re-exported


@cache
def short_names() -> dict[str, str]:
    """Short (lower-case) name → torch.nn class name (the contract's table)."""
    return dict(SHORT_NAMES)


def activation_name(act: nn.Module) -> str:
    """The dotted class path written to ``config.json`` (``torch.nn.modules.activation.Tanh``)."""
    cls = type(act)
    return f"{cls.__module__}.{cls.__qualname__}"


def resolve_activation(value: Any) -> nn.Module:
    """An ``nn.Module`` for ``value`` (instance, torch.nn class, name, or None → Identity)."""
    if value is None:
        return nn.Identity()
    if isinstance(value, nn.Module):
        return value
    if inspect.isclass(value) and issubclass(value, nn.Module):
        cls: type[nn.Module] | None = value
    elif isinstance(value, str):
        cls = getattr(nn, activation_class(value))  # the contract's names: validation accepts the same
    else:
        raise ValueError(f"activation_function must be a torch.nn.Module, a torch.nn class name or None, "
                         f"not {type(value).__name__} ({value!r})")
    try:
        return cls()
    except TypeError as exc:
        raise ValueError(f"activation_function '{cls.__name__}' cannot be created without arguments ({exc}); "
                         "pass an nn.Module instance instead") from None
