"""The Router's file format, torch-free: ``router_config.json`` both ways, tuple-string mapping keys, and the YAML
node of a saved Router (read without loading any module).

On disk (sentence-transformers 6.2) a Router is ``router_config.json`` ``{"types": {module_id: class},
"structure": {route: [module_id, ...]}, "parameters": {default_route, allow_empty_key, route_mappings}}`` with
mapping keys as Python tuple strings (``"(None, ('image', 'text'))"``) and one folder per module *instance*, named
``{route}_{index}_{Class}`` after its first use — or ``""``: a module whose files lie in the Router's own folder
(sentence-transformers 6.2 loads a route module stored in the model's root that way). In YAML the same Router is a
node whose shared modules get an ``id`` and later uses ``{ref: id}``. The Router module itself
(:mod:`stpipe.modules.router`) runs the routes and writes each module's state.
"""

from __future__ import annotations

import ast
import json
import os
import posixpath
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any

from stpipe.contracts.modality import normalize_modality
from stpipe.contracts.pipeline import ROUTER_CONFIG
from stpipe.contracts.router import DUPLICATE_MAPPING, default_route_problem, route_target_problem
from stpipe.errors import ConfigError, LoadError, Problem
from stpipe.files import check_relative, load_file_path, read_json
from stpipe.registry import find

RouteModality = str | tuple[str, ...] | None
RouteKey = tuple[str | None, RouteModality]
CONFIG_NAME = ROUTER_CONFIG
LEGACY_CONFIG_NAME = "config.json"  # the Asym module's file, same schema
PARAMS = ("default_route", "allow_empty_key", "route_mappings")


def modality_label(modality: Any) -> Any:
    """How a modality is shown in messages: ``('image', 'text')`` → ``'image+text'``."""
    return "+".join(str(m) for m in modality) if isinstance(modality, (tuple, list)) else modality


# ============================================================================================ route keys
def route_modality(modality: Any) -> RouteModality:
    """A modality as a mapping key, with :func:`~stpipe.modules.modality.normalize_modality`'s semantics: None,
    a name, or a *sorted* tuple of two or more names. ``"image+text"``, ``["text", "image"]`` and
    ``("image", "text")`` are the same key; a one-element list or tuple is the bare name (``["text"]`` ≡ ``"text"``).

    >>> route_modality("image+text"), route_modality(["text"]), route_modality(("text", "image"))
    (('image', 'text'), 'text', ('image', 'text'))
    """
    if modality is None:
        return None
    parts = modality.split("+") if isinstance(modality, str) else modality
    if isinstance(parts, (list, tuple)) and parts and all(isinstance(m, str) and m for m in parts):
        return normalize_modality(list(parts))
    raise ValueError(f"a modality is a name, an 'a+b' combination or a non-empty list of names, not {modality!r}")


def format_route_key(key: RouteKey) -> str:
    """The ``router_config.json`` form of a mapping key: the Python tuple string."""
    return repr((key[0], route_modality(key[1])))


def parse_route_key(text: Any) -> RouteKey:
    """Parse ``"('query', 'text')"``, ``"(None, ('image', 'text'))"`` …; ValueError for anything else.

    Only a literal 2-tuple ``(str | None, str | tuple[str, ...] | None)`` is accepted (``ast.literal_eval``
    evaluates no code)."""
    if not isinstance(text, str) or len(text) > 1000:
        raise ValueError("not a tuple string of reasonable length")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise ValueError(f"not a Python literal ({type(exc).__name__})") from None
    if not isinstance(value, tuple) or len(value) != 2:
        raise ValueError("expected a 2-tuple (task, modality)")
    task, modality = value
    if task is not None and not isinstance(task, str):
        raise ValueError(f"the task must be a string or None, not {task!r}")
    if isinstance(modality, list):
        raise ValueError("a combined modality must be a tuple, e.g. ('image', 'text')")
    return task, route_modality(modality)


def mappings_from(route_mappings: Any) -> tuple[dict[RouteKey, str], dict[RouteKey, tuple], list[Problem]]:
    """Tuple-keyed dict (Python API, tuple-string keys allowed) or YAML list → ``{(task, modality): route}``,
    the config path of each entry, and the problems found."""
    out: dict[RouteKey, str] = {}
    where: dict[RouteKey, tuple] = {}
    problems: list[Problem] = []
    if route_mappings is None:
        return out, where, problems
    if isinstance(route_mappings, Mapping):
        entries = []
        for key, route in route_mappings.items():
            path = ("route_mappings", str(key))
            try:
                key = parse_route_key(key) if isinstance(key, str) else key
                if not isinstance(key, tuple) or len(key) != 2 or not (key[0] is None or isinstance(key[0], str)):
                    raise ValueError("expected a (task, modality) tuple")
                entries.append(((key[0], route_modality(key[1])), route, path))
            except ValueError as exc:
                problems.append(Problem("check.router.mapping-key", path, f"invalid route_mappings key {key!r}: "
                                        f"{exc}", expected="(task, modality) with str/None task and str, tuple "
                                        "of str or None modality"))
    elif isinstance(route_mappings, (list, tuple)):
        entries = []
        for i, entry in enumerate(route_mappings):
            path = ("route_mappings", i)
            bad = [k for k in entry if k not in ("task", "modality", "route")] if isinstance(entry, Mapping) else []
            if not isinstance(entry, Mapping) or bad or not isinstance(entry.get("route"), str) or not (
                    entry.get("task") is None or isinstance(entry.get("task"), str)):
                problems.append(Problem("check.router.mapping", path, "a route mapping is {task?, modality?, route}",
                                        found=repr(entry)[:120], hint="omit task or modality for a wildcard"))
                continue
            try:
                entries.append(((entry.get("task"), route_modality(entry.get("modality"))), entry["route"], path))
            except ValueError as exc:
                problems.append(Problem("check.router.mapping", (*path, "modality"), str(exc)))
    else:
        return out, where, [Problem("check.router.mapping", ("route_mappings",), "route_mappings must be a list of "
                                    "{task?, modality?, route} (or a dict keyed by (task, modality) tuples)",
                                    found=type(route_mappings).__name__)]
    for key, route, path in entries:
        if key in out:
            problems.append(Problem(DUPLICATE_MAPPING, path, f"(task={key[0]!r}, modality="
                                    f"{modality_label(key[1])!r}) is mapped twice", hint="remove one of the mappings"))
        elif not isinstance(route, str):
            problems.append(Problem("check.router.mapping", path, "a mapping's route must be a route name",
                                    found=repr(route)))
        else:
            out[key], where[key] = route, path
    return out, where, problems


#: how deeply saved Routers may nest (routes whose modules are Routers); deeper is refused as hostile
MAX_ROUTER_DEPTH = 16


def read_router_config(model_path: str, subfolder: str = "", **hub: Any) -> tuple[dict[str, Any], str]:
    """The checked contents of a saved Router's config file and its path; LoadError for anything malformed,
    including routes that lead back to a Router containing them (checked before any module loads).

    Returns ``{"types", "structure", "parameters"}`` with ``route_mappings`` parsed to tuple keys."""
    config, path = _read_router_config(model_path, subfolder, **hub)
    _check_acyclic(model_path, subfolder, config, path, (), hub)
    return config, path


def _is_router_type(type_ref: str) -> bool:
    return type_ref.rsplit(".", 1)[-1] in ("Router", "Asym")


def _check_acyclic(model_path: str, subfolder: str, config: dict[str, Any], path: str, stack: tuple[str, ...],
                   hub: dict[str, Any]) -> None:
    """Walk the saved Routers below ``subfolder`` (their configs only): a *Router* module whose folder is the
    folder of a Router on the way there (``""``/``"."``, or a symlink back) would make loading recurse without end.
    A leaf module (not a Router) may keep its files in a Router's own folder — module id ``""``, its files next to
    ``router_config.json`` (and ``modules.json`` for a root Router): sentence-transformers 6.2 loads it."""
    here = str(Path(model_path, subfolder).resolve())
    stack = (*stack, here)
    if len(stack) > MAX_ROUTER_DEPTH:
        raise LoadError(f"Routers nested more than {MAX_ROUTER_DEPTH} deep", path=path)
    used = dict.fromkeys(mid for ids in config["structure"].values() for mid in ids)
    for mid in used:
        if not _is_router_type(config["types"][mid]):
            continue  # a leaf: its folder (wherever it is) holds no routes to follow
        child = posixpath.join(subfolder, mid) if subfolder else mid
        real = str(Path(model_path, child).resolve())
        if posixpath.normpath(mid or ".") == "." or real in stack:
            raise LoadError(f"module '{mid}' is the folder of a Router that contains it: its routes form a cycle",
                            path=path, hint="a Router module id in router_config.json must name its own sub-folder")
        if Path(model_path, child).is_dir():
            child_config, child_path = _read_router_config(model_path, child, **hub)
            _check_acyclic(model_path, child, child_config, child_path, stack, hub)


def _read_router_config(model_path: str, subfolder: str = "", **hub: Any) -> tuple[dict[str, Any], str]:
    path = (load_file_path(model_path, CONFIG_NAME, subfolder, **hub)
            or load_file_path(model_path, LEGACY_CONFIG_NAME, subfolder, **hub))
    if path is None:
        raise LoadError(f"no {CONFIG_NAME} (or legacy Asym {LEGACY_CONFIG_NAME}) found",
                        path=os.path.join(model_path, subfolder))
    config = read_json(path)
    types, structure = (config.get(k) if isinstance(config, dict) else None for k in ("types", "structure"))
    params = config.get("parameters", {}) if isinstance(config, dict) else None
    if not (isinstance(types, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in types.items())):
        raise LoadError('not a Router config: expected "types": {module_id: class reference}', path=path)
    if not (isinstance(structure, dict) and structure and all(
            isinstance(v, list) and all(isinstance(i, str) for i in v) for v in structure.values())):
        raise LoadError('not a Router config: expected "structure": {route: [module_id, ...]}', path=path)
    if not isinstance(params, dict) or any(k not in PARAMS for k in params):
        raise LoadError(f'"parameters" must be an object with keys among {list(PARAMS)}, found {params!r:.120}',
                        path=path)
    for route, ids in structure.items():
        for mid in ids:
            check_relative(mid)
            if mid not in types:
                raise LoadError(f"route '{route}' uses module id '{mid}', which has no entry in \"types\"", path=path)
    mappings = params.get("route_mappings") or {}
    if not isinstance(mappings, dict):
        raise LoadError('"route_mappings" must be an object with tuple-string keys', path=path)
    parsed: dict[RouteKey, Any] = {}
    for key, route in mappings.items():
        try:
            parsed[parse_route_key(key)] = route
        except ValueError as exc:
            raise LoadError(f"route_mappings key {key!r} cannot be parsed ({exc})", path=path,
                            hint="keys are Python tuple strings: \"('query', 'text')\", \"(None, 'image')\", "
                                 "\"(None, ('image', 'text'))\"; stpipe refuses to skip a key") from None
    return {"types": types, "structure": structure, "parameters": {**params, "route_mappings": parsed}}, path


def write_router_config(output_path: str, types: Mapping[str, str], structure: Mapping[str, list[str]],
                        params: Mapping[str, Any]) -> None:
    """Write ``router_config.json`` (``params``: default_route, allow_empty_key, tuple-keyed route_mappings)."""
    params = {**params, "route_mappings": {format_route_key(k): v for k, v in params["route_mappings"].items()}}
    with open(os.path.join(output_path, CONFIG_NAME), "w", encoding="utf-8") as fh:
        json.dump({"types": dict(types), "structure": dict(structure), "parameters": params}, fh, indent=4)


# ============================================================================================ YAML form
def yaml_mappings(mappings: Mapping[RouteKey, str]) -> list[dict[str, Any]]:
    """``{(task, modality): route}`` → the YAML list of ``{task, modality, route}`` entries (None = omitted)."""
    out = []
    for (task, modality), route in mappings.items():
        entry: dict[str, Any] = {} if task is None else {"task": task}
        if modality is not None:
            entry["modality"] = list(modality) if isinstance(modality, tuple) else modality
        out.append({**entry, "route": route})
    return out


def _node_with_id(node: Mapping[str, Any], mid: str) -> dict[str, Any]:
    node = dict(node)
    head = {"type": node.pop("type")} if "type" in node else {}
    return {**head, "id": mid, **node}


def route_nodes(structure: Mapping[str, list[tuple[Hashable, str]]],
                 make: Callable[[Hashable, str], Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """``{route: [node, ...]}`` from ``{route: [(key, module_id), ...]}`` (``key`` names one module): the node
    ``make(key, module_id)`` at a key's first use (with ``id: <module_id>`` when the key is used more than
    once), ``{ref: <that module_id>}`` after."""
    uses: dict[Hashable, int] = {}
    for entries in structure.values():
        for key, _ in entries:
            uses[key] = uses.get(key, 0) + 1
    ids: dict[Hashable, str] = {}
    subs: dict[str, list[dict[str, Any]]] = {}
    for route, entries in structure.items():
        subs[route] = []
        for key, mid in entries:
            if key in ids:
                subs[route].append({"ref": ids[key]})
                continue
            ids[key] = mid
            node = make(key, mid)
            subs[route].append(_node_with_id(node, mid) if uses[key] > 1 else dict(node))
    return subs


def router_node_from_dir(model_path: str, subfolder: str = "",
                         child_node: Callable[[str, str, str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The YAML node of a saved Router without loading any module: ``child_node(type_ref, folder, module_id)``
    gives each module's node (default ``{type: <registry name>, load_from: <folder>}``)."""
    config, _ = read_router_config(model_path, subfolder)

    def default(type_ref: str, folder: str, _mid: str) -> dict[str, Any]:
        spec = find(type_ref)
        return {"type": spec.name if spec else type_ref, "load_from": folder}

    make = child_node or default
    subs = route_nodes({r: [(mid, mid) for mid in ids] for r, ids in config["structure"].items()},
                        lambda mid, _: make(config["types"][mid], os.path.join(model_path, subfolder, mid), mid))
    params = config["parameters"]
    out: dict[str, Any] = {"type": "Router", "sub_modules": subs}
    for key in ("default_route", "allow_empty_key"):
        if key in params:
            out[key] = params[key]
    out["route_mappings"] = yaml_mappings(params["route_mappings"])
    return out


def check_router_params(routes: list[str], default_route: Any = None, allow_empty_key: Any = True,
                        route_mappings: Any = None) -> dict[RouteKey, str]:
    """Validate a Router's non-module parameters against its route names; the mappings as a tuple-keyed dict.
    One ConfigError with every problem (paths relative to the Router node): the same checks (code, path, hint) as
    validation's (:mod:`stpipe.contracts.router`), with sentence-transformers' messages."""
    problems: list[Problem] = []
    bad_default = default_route_problem(default_route, routes, f"Default route '{default_route}' not found in "
                                        f"route keys: {routes}")
    if bad_default is not None:
        problems.append(bad_default)
    if not isinstance(allow_empty_key, bool):
        problems.append(Problem("check.router.allow-empty-key", ("allow_empty_key",), "allow_empty_key must "
                                "be true or false", found=repr(allow_empty_key)))
    mappings, where, mapping_problems = mappings_from(route_mappings)
    problems += mapping_problems
    for key, route in mappings.items():
        at = where[key] + (("route",) if isinstance(where[key][-1], int) else ())  # a YAML entry's route
        bad_target = route_target_problem(route, routes, at, f"route_mappings contains mapping to '{route}' which "
                                          f"is not in sub_modules. Available routes: {routes}")
        if bad_target is not None:
            problems.append(bad_target)
    if problems:
        raise ConfigError(problems)
    return mappings
