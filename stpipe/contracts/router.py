"""The ``Router`` contract, and the Router mistakes that validation (:mod:`stpipe.config.checks_router`) and the
constructor (:class:`stpipe.modules.router.Router`) both find: one function per mistake, so both report it with
the same code, path and hint (the constructor keeps sentence-transformers' message text).

>>> default_route_problem("documnet", ["query", "document"]).hint
"did you mean 'document'? available routes: query, document"
>>> route_target_problem("a", ["a"], ("route_mappings", 0, "route")) is None
True
"""

from __future__ import annotations

from typing import Any

from stpipe.contracts.base import Contract
from stpipe.contracts.pipeline import ROUTER_CONFIG
from stpipe.errors import Path, Problem, did_you_mean

DEFAULT_ROUTE = "check.default-route"
ROUTE_TARGET = "check.route-target"
DUPLICATE_MAPPING = "check.duplicate-mapping"
PARAMS = ("sub_modules", "default_route", "allow_empty_key", "route_mappings")
CONFIG_KEYS = ("default_route", "allow_empty_key", "route_mappings")


def effective_default(default_route: Any, allow_empty_key: Any, routes: list[str]) -> str | None:
    """The route an input with no mapping, task or modality route goes to: ``default_route``, or — when
    ``allow_empty_key`` is not false (the seed's default) — the first route; None: such an input is an error.

    >>> effective_default(None, True, ["query", "document"]), effective_default(None, False, ["query"])
    ('query', None)
    """
    if isinstance(default_route, str):
        return default_route
    return routes[0] if allow_empty_key is not False and routes else None


def mapping_keys(task: str | None, modality: Any) -> tuple[tuple[Any, Any], ...]:
    """The ``route_mappings`` keys tried for an input, in the seed's priority order: task and modality, task
    alone, modality alone, the catch-all (then a route named like the task, one named like the modality, and the
    default route — :meth:`stpipe.modules.router.Router.resolve_route`).

    >>> mapping_keys("query", "text")
    (('query', 'text'), ('query', None), (None, 'text'), (None, None))
    """
    return (task, modality), (task, None), (None, modality), (None, None)


def mapping_rank(task: Any, modality: Any) -> int:
    """Where a mapping with this task/modality (None = wildcard) stands in :func:`mapping_keys`' order.

    >>> sorted([(None, None), ("q", None), (None, "text"), ("q", "text")], key=lambda m: mapping_rank(*m))
    [('q', 'text'), ('q', None), (None, 'text'), (None, None)]
    """
    return [(True, True), (True, False), (False, True), (False, False)].index((task is not None,
                                                                               modality is not None))


def route_hint(value: Any, routes: list[str]) -> str:
    """``did you mean 'x'? available routes: a, b``."""
    close = did_you_mean(str(value), routes) if isinstance(value, str) else None
    avail = "available routes: " + (", ".join(routes) if routes else "none")
    return f"{close} {avail}" if close else avail


def default_route_problem(default_route: Any, routes: list[str], message: str | None = None) -> Problem | None:
    """``default_route`` must name a route (None: no default given)."""
    if default_route is None or (isinstance(default_route, str) and default_route in routes):
        return None
    return Problem(code=DEFAULT_ROUTE, path=("default_route",),
                   message=message or f"default route '{default_route}' is not a route of this Router",
                   expected="one of: " + ", ".join(routes), found=repr(default_route),
                   hint=route_hint(default_route, routes))


def route_target_problem(route: Any, routes: list[str], path: Path, message: str | None = None) -> Problem | None:
    """A ``route_mappings`` entry must point to a route; ``path`` is where the entry's route is written."""
    if not isinstance(route, str) or route in routes:
        return None
    return Problem(code=ROUTE_TARGET, path=tuple(path),
                   message=message or f"route mapping points to '{route}', which is not a route of this Router",
                   expected="one of: " + ", ".join(routes), found=repr(route), hint=route_hint(route, routes))


#: the graph stage walks every route itself (:mod:`stpipe.config.graph`), so the contract's describe is empty
ROUTER = Contract(name="Router", params=PARAMS, is_input=True, config_files=(ROUTER_CONFIG, "config.json"),
                  config_keys=CONFIG_KEYS)
