"""Semantic checks of Router nodes (issue 3), registered in the one registry of :mod:`stpipe.config.checks`.

A Router's ``sub_modules`` routes must be non-empty, its ``default_route`` and every ``route_mappings``
target must name a route, modality combinations must be well formed, no (task, modality) pair may be
mapped twice, and a route nothing can select is reported (a warning). These checks run, and report,
between the id/reference checks and the module-option checks (``before=`` below keeps that place
whichever of the two modules is imported first); importing :mod:`stpipe.config.checks` loads this module.

>>> effective_default({"sub_modules": {"query": [], "document": []}})
'query'
>>> effective_default({"sub_modules": {"query": []}, "allow_empty_key": False}) is None
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from stpipe.config.checks import CheckContext, check, nodes_of_type
from stpipe.contracts.modality import MODALITIES, normalize_modality
from stpipe.contracts.router import (
    DEFAULT_ROUTE,
    DUPLICATE_MAPPING,
    ROUTE_TARGET,
    default_route_problem,
    route_target_problem,
)
from stpipe.contracts.router import effective_default as default_route_of
from stpipe.errors import Problem, did_you_mean

_NEXT = "check.options"
"""The first check after the Router checks in the report order."""


# --------------------------------------------------------------------------- helpers
def _routes(node: Mapping[str, Any]) -> list[str]:
    sub = node.get("sub_modules")
    return [str(k) for k in sub] if isinstance(sub, Mapping) else []


def _mappings(node: Mapping[str, Any]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    rm = node.get("route_mappings")
    if isinstance(rm, list):
        for i, m in enumerate(rm):
            if isinstance(m, Mapping):
                yield i, m


def _parts(m: Any) -> list[str] | None:
    """The modalities a combination names: a list of names, or a string written with '+' (``image+text``)."""
    if isinstance(m, list) and all(isinstance(x, str) for x in m):
        return list(m)
    if isinstance(m, str) and "+" in m:
        return m.split("+")
    return None


def _modality_key(m: Any) -> Any:
    """The modality as the Router matches it (:func:`normalize_modality`: ``[text]`` → 'text',
    ``image+text`` and ``[text, image]`` → ('image', 'text'))."""
    if _parts(m) is not None or m is None or isinstance(m, str):
        return normalize_modality(m)
    return repr(m)


# --------------------------------------------------------------------------- checks
@check("check.empty-route", before=_NEXT)
def routes_not_empty(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    for path, node in nodes_of_type(ctx, "Router"):
        sub = node.get("sub_modules")
        if isinstance(sub, Mapping):
            for route, mods in sub.items():
                if isinstance(mods, list) and not mods:
                    yield Problem(code="check.empty-route", path=path + ("sub_modules", route),
                                  message=f"route '{route}' has no modules",
                                  hint="give the route at least an input module (e.g. a Transformer), or remove it")


@check(DEFAULT_ROUTE, before=_NEXT)
def default_route_exists(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    for path, node in nodes_of_type(ctx, "Router"):
        dr, routes = node.get("default_route"), _routes(node)
        problem = default_route_problem(dr, routes) if isinstance(dr, str) and routes else None
        if problem is not None:
            yield replace(problem, path=path + problem.path)


@check(ROUTE_TARGET, before=_NEXT)
def mapping_targets_exist(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    for path, node in nodes_of_type(ctx, "Router"):
        routes = _routes(node)
        if not routes:
            continue
        for i, m in _mappings(node):
            problem = route_target_problem(m.get("route"), routes, path + ("route_mappings", i, "route"))
            if problem is not None:
                yield problem


@check("check.modality", before=_NEXT)
def modality_combinations(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    """List items are checked by the schema, the names in an ``a+b`` string here; a combination lists each
    modality once and never 'message'."""
    for path, node in nodes_of_type(ctx, "Router"):
        for i, m in _mappings(node):
            mod = _parts(m.get("modality"))
            if mod is None:
                continue
            p = path + ("route_mappings", i, "modality")
            if isinstance(m.get("modality"), str):
                for name in [x for x in mod if x not in MODALITIES]:
                    yield Problem(code="check.modality", path=p, message=f"'{name}' in {m['modality']!r} is not a "
                                  "modality", expected="one of: " + ", ".join(MODALITIES), found=repr(name),
                                  hint=did_you_mean(name, MODALITIES) or "combine modalities with '+', e.g. "
                                  "image+text")
            if len(set(mod)) != len(mod):
                yield Problem(code="check.modality", path=p, message=f"modality {mod} lists a modality twice",
                              hint="a combination names each modality once, e.g. [image, text]")
            if "message" in mod and len(set(mod)) > 1:
                yield Problem(code="check.modality", path=p, message="'message' cannot be combined with other "
                              "modalities", expected="a combination of " + ", ".join(MODALITIES[:4]),
                              hint="use modality: message on its own")


@check(DUPLICATE_MAPPING, before=_NEXT)
def unique_mappings(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    for path, node in nodes_of_type(ctx, "Router"):
        seen: dict[tuple, int] = {}
        for i, m in _mappings(node):
            mod = m.get("modality")
            names = _parts(mod) or ([mod] if isinstance(mod, str) else [])
            if any(x not in MODALITIES for x in names):
                continue  # a bad name is reported by the schema / check.modality
            key = (m.get("task"), _modality_key(mod))
            if key in seen:
                first = seen[key]
                yield Problem(code=DUPLICATE_MAPPING, path=path + ("route_mappings", i),
                              message=f"(task={key[0]!r}, modality={key[1]!r}) is already mapped by "
                                      f"route_mappings[{first}]",
                              hint="the first mapping wins; remove or change one of them")
            else:
                seen[key] = i


def effective_default(node: Mapping[str, Any]) -> str | None:
    """The Router node's default route (:func:`stpipe.contracts.router.effective_default`)."""
    return default_route_of(node.get("default_route"), node.get("allow_empty_key", True), _routes(node))


@check("check.unreachable-route", before=_NEXT)
def reachable_routes(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    """A route is reached by a mapping, as the default, or by ``task=<route>`` — unless a catch-all mapping
    (no task, no modality), or one for that task, answers first. Only certain cases are reported (warning)."""
    for path, node in nodes_of_type(ctx, "Router"):
        routes = _routes(node)
        maps = [(i, m) for i, m in _mappings(node) if m.get("route") in routes]  # bad targets: reported elsewhere
        targets = {m.get("route") for _, m in maps}
        for route in routes:
            if route in targets or route == effective_default(node):
                continue
            first = next((i for i, m in maps if m.get("modality") is None and m.get("task") in (None, route)), None)
            if first is not None:
                rule = "a catch-all mapping" if maps and node["route_mappings"][first].get("task") is None else \
                    f"a mapping for task '{route}'"
                yield Problem(code="check.unreachable-route", path=path + ("sub_modules", route),
                              severity="warning", message=f"route '{route}' can never be selected",
                              hint=f"route_mappings[{first}] ({rule}) answers before a route is looked up by name; "
                                   "map a task or modality to this route, or remove it")
