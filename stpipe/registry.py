"""The one registry: a node's ``type`` name → contract + Module class.

Built-in modules are listed here eagerly, each with its torch-free :class:`~stpipe.contracts.Contract`
(:mod:`stpipe.contracts`: parameters, enums, static description), so a ``type`` can never fail because
"nobody imported the module that registers it", and validation never imports a module class: a built-in's
class (and torch) is imported only when a node is built (:attr:`ModuleSpec.cls`). Third-party types have no
contract; validation asks their class (:func:`describe` imports it). Names accepted for a type, in order of
preference:

* the short name of the seed (``Transformer``, ``Pooling``, ``Dense`` …);
* sentence-transformers' class paths, legacy (``sentence_transformers.models.Pooling``) and 6.x
  (``sentence_transformers.sentence_transformer.modules.pooling.Pooling``), so that ``modules.json``
  files written by either resolve;
* third-party modules, registered from Python with :func:`register` or declared by an installed
  package in the ``stpipe.modules`` entry-point group.

Anything else — in particular an arbitrary dotted import path written in YAML — is refused: stpipe
never imports a class because a config file named it.

>>> spec("sentence_transformers.models.Pooling").name
'Pooling'
>>> spec("Pooling").contract.enums["pooling_mode"][:3]
('cls', 'max', 'mean')
>>> try:
...     spec("Poolng")
... except ConfigError as e:
...     print(e.problems[0].hint)
did you mean 'Pooling'?
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stpipe.catalogue import (
    Catalogue,  # noqa: F401 - where losses and evaluators import it from
    Spec,
    check_overwrite,
    entry_points,
    import_target,
)
from stpipe.errors import ConfigError, Problem, did_you_mean

if TYPE_CHECKING:
    from stpipe.contracts import Contract, FeatureIO
    from stpipe.modules.module import Module

ENTRY_POINT_GROUP = "stpipe.modules"
_ST = "sentence_transformers"


@dataclass
class ModuleSpec(Spec):
    """What the registry knows about one module type."""

    st_type: str | None = None  # dotted path written to modules.json / router_config.json
    contract_target: str | Contract | None = None  # "stpipe.contracts.x:NAME" (built-ins) or None

    @property
    def contract(self) -> Contract | None:
        """The torch-free contract of a built-in type (None for third-party types: ask :attr:`cls`)."""
        if isinstance(self.contract_target, str):
            self.contract_target = import_target(self.contract_target)
        return self.contract_target

    def describe(self, params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
        """The static description of a node of this type: the contract's, else the class's ``describe``."""
        c = self.contract
        return (c.describe if c is not None else self.cls.describe)(params, upstream, ctx)

    def is_input(self) -> bool:
        """Whether this type turns raw inputs into tensors (an ``InputModule``)."""
        if self.contract is not None:
            return self.contract.is_input
        # by name, so that the registry (below modules/) imports no module class to ask
        return isinstance(self.cls, type) and any(
            b.__name__ == "InputModule" and b.__module__ == "stpipe.modules.module" for b in self.cls.__mro__)

    @property
    def schema_file(self) -> str:
        return f"modules/{self.name}.schema.json"


#: built-in name → its contract ("module:attribute" under stpipe.contracts)
_CONTRACTS = {"Transformer": "transformer:TRANSFORMER", "Pooling": "pooling:POOLING", "Dense": "dense:DENSE",
              "Normalize": "normalize:NORMALIZE", "Router": "router:ROUTER",
              "StaticEmbedding": "static:STATIC_EMBEDDING", "SparseStaticEmbedding": "static:SPARSE_STATIC_EMBEDDING",
              "SpladePooling": "static:SPLADE_POOLING", "LogitScore": "logit_score:LOGIT_SCORE",
              "GraphEncoder": "graph:GRAPH_ENCODER"}


def _builtin(name: str, target: str, st_type: str, *aliases: str) -> ModuleSpec:
    return ModuleSpec(name=name, target=target, st_type=st_type, aliases=aliases,
                      contract_target=f"stpipe.contracts.{_CONTRACTS[name]}")


_BASE = f"{_ST}.base.modules"
_SENT = f"{_ST}.sentence_transformer.modules"
_SPARSE = f"{_ST}.sparse_encoder.modules"
_BUILTINS: list[ModuleSpec] = [
    _builtin(
        "Transformer", "stpipe.modules.transformer:Transformer", f"{_BASE}.transformer.Transformer",
        f"{_ST}.models.Transformer", f"{_BASE}.Transformer", f"{_SENT}.Transformer",
        f"{_SENT}.transformer.Transformer", f"{_SPARSE}.Transformer",
        f"{_ST}.sparse_encoder.models.MLMTransformer", f"{_SPARSE}.MLMTransformer",
        f"{_SPARSE}.mlm_transformer.MLMTransformer",
    ),
    _builtin(
        "Pooling", "stpipe.modules.pooling:Pooling", f"{_SENT}.pooling.Pooling",
        f"{_ST}.models.Pooling", f"{_SENT}.Pooling", f"{_BASE}.pooling.Pooling", f"{_BASE}.Pooling",
    ),
    _builtin(
        "Dense", "stpipe.modules.dense:Dense", f"{_BASE}.dense.Dense",
        f"{_ST}.models.Dense", f"{_BASE}.Dense", f"{_SENT}.Dense", f"{_SENT}.dense.Dense",
    ),
    _builtin(
        "Normalize", "stpipe.modules.normalize:Normalize", f"{_BASE}.normalize.Normalize",
        f"{_ST}.models.Normalize", f"{_BASE}.Normalize", f"{_SENT}.Normalize", f"{_SENT}.normalize.Normalize",
    ),
    _builtin(
        "Router", "stpipe.modules.router:Router", f"{_BASE}.router.Router",
        f"{_ST}.models.Router", f"{_ST}.models.Asym", f"{_BASE}.Router", f"{_SENT}.Router",
        f"{_SENT}.router.Router", f"{_SPARSE}.Router", f"{_BASE}.router.Asym",
    ),
    _builtin(
        "StaticEmbedding", "stpipe.modules.static:StaticEmbedding", f"{_SENT}.static_embedding.StaticEmbedding",
        f"{_ST}.models.StaticEmbedding", f"{_SENT}.StaticEmbedding",
    ),
    _builtin(
        "SparseStaticEmbedding", "stpipe.modules.sparse:SparseStaticEmbedding",
        f"{_SPARSE}.sparse_static_embedding.SparseStaticEmbedding",
        f"{_ST}.sparse_encoder.models.SparseStaticEmbedding", f"{_SPARSE}.SparseStaticEmbedding",
    ),
    _builtin(
        "SpladePooling", "stpipe.modules.sparse:SpladePooling", f"{_SPARSE}.splade_pooling.SpladePooling",
        f"{_ST}.sparse_encoder.models.SpladePooling", f"{_SPARSE}.SpladePooling",
    ),
    _builtin(
        "LogitScore", "stpipe.modules.logit_score:LogitScore", f"{_ST}.cross_encoder.modules.logit_score.LogitScore",
        f"{_ST}.cross_encoder.modules.LogitScore",
    ),
    # an export's route (no sentence-transformers counterpart: its modules.json never names it)
    _builtin("GraphEncoder", "stpipe.modules.graph_encoder:GraphEncoder", "stpipe.modules.graph_encoder.GraphEncoder",
             "stpipe.runtimes.encoder.GraphEncoder"),  # the path before issue 18: still read
]

_specs: dict[str, ModuleSpec] = {}
_aliases: dict[str, str] = {}
_entry_points_loaded = False
_replaced: dict[str, ModuleSpec] = {}  # built-ins replaced with replace=True


def _add(s: ModuleSpec, *, keep: bool = False) -> ModuleSpec:
    """Register ``s``; ``keep``: an alias that already names a type keeps it (entry points never take over a name,
    so it does not matter whether they were read before or after a lookup)."""
    _specs[s.name] = s
    for a in (s.st_type, *s.aliases):
        if a and not (keep and a in _aliases):
            _aliases[a] = s.name
    return s


for _s in _BUILTINS:
    _add(_s)


def _load_entry_points() -> None:
    """Read the ``stpipe.modules`` entry points (once). Only when a name is not already known (or all names are
    listed): reading them means importing ``importlib.metadata`` and scanning every installed distribution."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _specs:  # saved as the entry point's dotted class path, which resolves back here
            _add(ModuleSpec(name=ep.name, target=ep.value, st_type=ep.value.replace(":", "."),
                            origin="entry-point"), keep=True)


def register(
    cls: type | None = None, *, name: str | None = None, aliases: tuple[str, ...] = (), st_type: str | None = None,
    replace: bool = False,
) -> Any:
    """Register a Module class under ``name`` (default: its class name). Usable as a decorator. A built-in type's
    name or alias is refused unless ``replace=True`` (:func:`stpipe.catalogue.check_overwrite`, the policy losses
    and evaluators follow too).

    >>> import torch
    >>> from stpipe.modules.module import Module
    >>> @register(name="Scale2")
    ... class Scale2(Module):
    ...     def forward(self, features, **kw):
    ...         features["sentence_embedding"] = 2 * features["sentence_embedding"]
    ...         return features
    >>> get("Scale2") is Scale2
    True
    >>> unregister("Scale2")
    """

    def deco(c: type) -> type:
        key = name or c.__name__
        for taken in (key, *aliases):
            check_overwrite("module type", taken, find(taken), replace)
        if key in _specs and _specs[key].origin == "builtin":
            _replaced[key] = _specs[key]  # unregister puts the built-in back
        _add(ModuleSpec(name=key, target=c, st_type=st_type or f"{c.__module__}.{c.__qualname__}",
                        aliases=aliases, origin="python"))
        return c

    return deco(cls) if cls is not None else deco


def unregister(name: str) -> None:
    """Remove a registered type (a built-in it replaced comes back)."""
    s = _specs.pop(name, None)
    if s is not None:
        for a, n in list(_aliases.items()):
            if n == name:
                del _aliases[a]
    if name in _replaced:
        _add(_replaced.pop(name))


def names() -> list[str]:
    """All registered short names, sorted."""
    _load_entry_points()
    return sorted(_specs)


def find(type_name: str) -> ModuleSpec | None:
    """The spec for a short name or alias, or None. The entry points are read only for a name not known
    without them (a built-in name never needs them)."""
    key = _aliases.get(type_name, type_name)
    if key not in _specs and not _entry_points_loaded:
        _load_entry_points()
        key = _aliases.get(type_name, type_name)
    return _specs.get(key)


def spec(type_name: str, path: tuple = ("type",)) -> ModuleSpec:
    """The spec for ``type_name``; a ConfigError with the available names and a "did you mean" otherwise."""
    s = find(type_name)
    if s is not None:
        return s
    available = names()
    hint = did_you_mean(type_name.rsplit(".", 1)[-1], available)
    if "." in str(type_name):
        msg = (f"'{type_name}' is not a registered module type; stpipe does not import classes named by a "
               "config file")
        hint = (hint + " " if hint else "") + (
            "Register custom modules with stpipe.register(...) or the 'stpipe.modules' entry-point group.")
    else:
        msg = f"unknown module type '{type_name}'"
    raise ConfigError([Problem(code="registry.unknown-type", path=tuple(path), message=msg,
                               expected="one of: " + ", ".join(available), found=repr(type_name), hint=hint)])


def get(type_name: str, path: tuple = ("type",)) -> type[Module]:
    """The Module class for ``type_name`` (see :func:`spec`)."""
    return spec(type_name, path).cls


def name_of(obj: Any) -> str:
    """The registry short name of a module instance or class."""
    cls = obj if isinstance(obj, type) else type(obj)
    for s in _specs.values():
        if s._cls is cls or s.target is cls or (isinstance(s.target, str)
                                                  and s.target == f"{cls.__module__}:{cls.__qualname__}"):
            return s.name
    return cls.__name__


def st_type_of(obj: Any) -> str:
    """The dotted class path sentence-transformers 6.2 writes for this module."""
    s = find(name_of(obj))
    if s is None or not s.st_type:
        cls = obj if isinstance(obj, type) else type(obj)
        return f"{cls.__module__}.{cls.__qualname__}"
    return s.st_type
