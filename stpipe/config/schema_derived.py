"""A node schema for a registered module type that has neither a schema file nor a ``schema`` attribute: derived
from its ``__init__`` signature, so unknown keys get a "did you mean" and missing parameters are reported.

>>> class Scale:
...     def __init__(self, factor: float = 2.0, mode: str | None = None, *, axes: list[int]) -> None: ...
>>> s = derived_schema(Scale, "Scale")
>>> s["properties"]
{'factor': {'type': 'number'}, 'mode': {'type': ['string', 'null']}, 'axes': {'type': 'array'}}
>>> s["else"], s["additionalProperties"]
({'required': ['axes']}, False)
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from stpipe.contracts.pipeline import NODE_KEYS  # noqa: F401 - node keys (not constructor parameters)

_PY_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array", tuple: "array",
             dict: "object", type(None): "null"}


def _json_types(annotation: Any) -> list[str] | None:
    """JSON Schema types for an evident annotation (``int``, ``float | None``, ``list[str]`` …), else None."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        out: list[str] = []
        for arg in typing.get_args(annotation):
            sub = _json_types(arg)
            if sub is None:
                return None
            out += [t for t in sub if t not in out]
        return out
    base = origin if origin is not None else annotation
    return [_PY_TYPES[base]] if isinstance(base, type) and base in _PY_TYPES else None


def derived_schema(cls: type, name: str) -> dict[str, Any] | None:
    """A node schema from ``cls.__init__``: its parameters are the allowed keys (a ``**kwargs`` constructor also
    accepts others), those without a default are required unless ``load_from`` is given, and evident
    annotations give types. None when the signature says nothing (``(*args, **kwargs)``)."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # annotations that do not evaluate: names only
        hints = {}
    params = [p for p in list(sig.parameters.values())[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
              and p.name not in NODE_KEYS]
    open_ = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if not params and open_:
        return None
    props: dict[str, Any] = {}
    for p in params:
        sub: dict[str, Any] = {}
        types_ = _json_types(hints.get(p.name)) if p.name in hints else None
        if types_ is not None:
            if p.default is None and "null" not in types_:
                types_.append("null")
            sub["type"] = types_[0] if len(types_) == 1 else types_
        props[p.name] = sub
    required = [p.name for p in params if p.default is p.empty]
    schema: dict[str, Any] = {"title": name, "description": f"derived from {cls.__qualname__}.__init__",
                              "type": "object", "properties": props, "required": ["type"],
                              "additionalProperties": open_}
    if required:
        schema.update({"if": {"required": ["load_from"]}, "else": {"required": required}})
    return schema
