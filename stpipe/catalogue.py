"""One class of registry for every kind of named plug-in — module types (:mod:`stpipe.registry`), losses
(:mod:`stpipe.training.losses`) and evaluators (:mod:`stpipe.experiments.evaluators`) — with one overwrite policy
(:func:`check_overwrite`): a built-in name is refused unless the caller says ``replace=True``. Torch-free: a
target is a ``"package.module:Class"`` string, imported only when it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stpipe.errors import ConfigError, Problem, did_you_mean


def import_target(target: str | type) -> Any:
    """``"package.module:Name"`` → that object, imported now (a class given as itself is returned as it is). The
    registries (module types, and the :class:`Catalogue` of losses and of evaluators) keep targets as strings so that
    nothing is imported before it is used."""
    if not isinstance(target, str):
        return target
    mod, _, attr = target.partition(":")
    return getattr(importlib.import_module(mod), attr)


@dataclass
class Spec:
    """One registered name (a module type, a loss, an evaluator): its class, imported on first use."""

    name: str
    target: str | type  # "package.module:Class" (imported on first use) or the class itself
    aliases: tuple[str, ...] = ()
    origin: str = "builtin"  # builtin | python | entry-point
    _cls: type | None = field(default=None, repr=False)

    @property
    def cls(self) -> type:
        """The class (imported on first use: for a built-in module type, this imports torch)."""
        if self._cls is None:
            self._cls = import_target(self.target)
        return self._cls

    @property
    def class_path(self) -> str:
        """``package.module.Class``, without importing it."""
        if isinstance(self.target, type):
            return f"{self.target.__module__}.{self.target.__qualname__}"
        return self.target.replace(":", ".")


def entry_points(group: str) -> Any:
    """:func:`importlib.metadata.entry_points` of ``group``, importing ``importlib.metadata`` only now."""
    from importlib.metadata import entry_points as installed

    return installed(group=group)


def check_overwrite(kind: str, key: str, known: Spec | None, replace: bool) -> None:
    """The one overwrite policy: registering over a built-in ``kind`` named ``key`` needs ``replace=True``
    (a plug-in registered earlier may be replaced: the last registration wins, as in Python)."""
    if known is not None and known.origin == "builtin" and not replace:
        raise ValueError(f"'{key}' is a built-in {kind}; register yours under another name, or pass "
                         f"replace=True to replace the built-in")


class Catalogue:
    """A registry of named classes beside module types — losses (:mod:`stpipe.training.losses`) and evaluators
    (:mod:`stpipe.experiments.evaluators`): built-ins listed eagerly as import targets, plugins registered from
    Python (:meth:`register`) or declared in an entry-point group (read once, when a name is looked up or listed).
    A built-in name is replaced only with ``replace=True`` (:func:`check_overwrite`); a name that is unknown or does
    not import is a ConfigError at ``path``.

    >>> c = Catalogue("widget", "stpipe.widgets", [Spec("Gear", "fractions:Fraction", ("gear",))],
    ...               hint="register one")
    >>> c.get("gear").__name__, c.names()
    ('Fraction', ['Gear'])
    >>> try:
    ...     c.get("Gaer", ("widget",))
    ... except ConfigError as e:
    ...     print(e.problems[0].code, "-", e.problems[0].message, "-", e.problems[0].hint)
    registry.unknown-widget - unknown widget 'Gaer' - did you mean 'Gear'?
    """

    def __init__(self, kind: str, group: str, builtins: list[Spec], *, hint: str,
                 title: str = "invalid model definition",
                 default_name: Callable[[type], str] = lambda c: c.__name__) -> None:
        self.kind, self.group, self.hint, self.title = kind, group, hint, title
        self._default_name = default_name
        self._specs = {s.name: s for s in builtins}
        self._loaded = False
        self._replaced: dict[str, Spec] = {}

    def _table(self) -> dict[str, Spec]:
        if not self._loaded:
            self._loaded = True
            for ep in entry_points(group=self.group):
                self._specs.setdefault(ep.name, Spec(ep.name, ep.value, origin="entry-point"))
        table = dict(self._specs)
        for s in self._specs.values():
            for a in s.aliases:
                table.setdefault(a, s)
        return table

    def register(self, cls: type | None = None, *, name: str | None = None, replace: bool = False) -> Any:
        """Register ``cls`` under ``name`` (default: the catalogue's default name of the class); a decorator too.
        A built-in name needs ``replace=True``."""

        def deco(c: type) -> type:
            key = name or self._default_name(c)
            known = self._table().get(key)
            check_overwrite(self.kind, key, known, replace)
            if known is not None and known.origin == "builtin":
                self._replaced[key] = known  # unregister puts the built-in back
                self._specs.pop(known.name, None)
            self._specs[key] = Spec(key, c, origin="python")
            return c

        return deco(cls) if cls is not None else deco

    def unregister(self, name: str) -> None:
        """Remove a registered (non built-in) name; a built-in it replaced comes back."""
        if name in self._specs and self._specs[name].origin != "builtin":
            del self._specs[name]
        if name in self._replaced:
            known = self._replaced.pop(name)
            self._specs[known.name] = known

    def names(self) -> list[str]:
        """Every registered name (without aliases), sorted."""
        self._table()
        return sorted(self._specs)

    def get(self, name: Any, path: tuple = ()) -> type:
        """The class registered as ``name`` (or an alias)."""
        table = self._table()
        s = table.get(name) if isinstance(name, str) else None
        if s is None:
            hint = did_you_mean(name, list(table)) if isinstance(name, str) else None
            raise ConfigError([Problem(code=f"registry.unknown-{self.kind}", path=tuple(path),
                                       message=f"unknown {self.kind} {name!r}",
                                       expected="one of: " + ", ".join(self.names()), found=repr(name),
                                       hint=hint or self.hint)], title=self.title)
        try:
            return s.cls
        except Exception as exc:  # a plugin that does not import
            raise ConfigError([Problem(code=f"registry.unknown-{self.kind}", path=tuple(path),
                                       message=f"{self.kind} {name!r} ({s.class_path}) cannot be imported: {exc}",
                                       hint="install the package that provides it, or fix its import")],
                              title=self.title) from None
