"""Router files and YAML nodes: ``router_config.json``, tuple-string mapping keys, ``to_node`` / ``node_from_dir``.

Stateless helpers of :mod:`stpipe.modules.router`. On disk (sentence-transformers 6.2) a Router is
``router_config.json`` ``{"types": {module_id: class}, "structure": {route: [module_id, ...]}, "parameters":
{default_route, allow_empty_key, route_mappings}}`` with mapping keys as Python tuple strings
(``"(None, ('image', 'text'))"``) and one folder per module *instance*, named ``{route}_{index}_{Class}`` after
its first use. In YAML the same Router is a node whose shared modules get an ``id`` and later uses ``{ref: id}``.
"""

from __future__ import annotations

import ast
import json
import os
import posixpath
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

from torch import nn

from stpipe.contracts.router import DUPLICATE_MAPPING
from stpipe.errors import ConfigError, LoadError, Problem, StpipeError
from stpipe.files import check_relative, read_json
from stpipe.modules.modality import normalize_modality
from stpipe.modules.module import FeatureIO, Module

if TYPE_CHECKING:
    from stpipe.modules.router import Router

RouteModality = str | tuple[str, ...] | None
RouteKey = tuple[str | None, RouteModality]
CONFIG_NAME = "router_config.json"
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


# ============================================================================================ files
def module_ids(router: Router) -> dict[str, list[tuple[nn.Module, str, bool]]]:
    """``{route: [(module, module_id, first_use), ...]}``: an instance keeps the id ``{route}_{index}_{Class}``
    of its first use (in route order) wherever else it is used."""
    ids: dict[int, str] = {}
    out: dict[str, list[tuple[nn.Module, str, bool]]] = {}
    for route, seq in router.sub_modules.items():
        out[route] = []
        for i, module in enumerate(seq):
            first = id(module) not in ids
            if first:
                ids[id(module)] = f"{route}_{i}_{type(module).__name__}"
            out[route].append((module, ids[id(module)], first))
    return out


def save_router(router: Router, output_path: str, safe_serialization: bool = True, **kwargs: Any) -> None:
    """Write ``router_config.json`` and one folder per module instance."""
    from stpipe.registry import st_type_of

    os.makedirs(output_path, exist_ok=True)
    types: dict[str, str] = {}
    structure: dict[str, list[str]] = {}
    for route, entries in module_ids(router).items():
        structure[route] = []
        for i, (module, mid, first) in enumerate(entries):
            if first:
                if mid in types or not hasattr(module, "save"):
                    raise ValueError(f"cannot save route '{route}' module {i} ({type(module).__name__}): "
                                     + ("its folder name collides with another module's" if mid in types
                                        else "it has no save method"))
                types[mid] = st_type_of(module)
                os.makedirs(os.path.join(output_path, mid), exist_ok=True)
                module.save(os.path.join(output_path, mid), safe_serialization=safe_serialization, **kwargs)
            structure[route].append(mid)
    params = {"default_route": router.default_route, "allow_empty_key": router.allow_empty_key,
              "route_mappings": {format_route_key(k): v for k, v in router.route_mappings.items()}}
    with open(os.path.join(output_path, CONFIG_NAME), "w", encoding="utf-8") as fh:
        json.dump({"types": types, "structure": structure, "parameters": params}, fh, indent=4)


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
    """Walk the saved Routers below ``subfolder`` (their configs only): a module folder that is the folder of a
    Router on the way there (``"."``, or a symlink back) would make loading recurse without end."""
    from pathlib import Path

    here = str(Path(model_path, subfolder).resolve())
    stack = (*stack, here)
    if len(stack) > MAX_ROUTER_DEPTH:
        raise LoadError(f"Routers nested more than {MAX_ROUTER_DEPTH} deep", path=path)
    used = dict.fromkeys(mid for ids in config["structure"].values() for mid in ids)
    for mid in used:
        child = posixpath.join(subfolder, mid) if subfolder else mid
        real = str(Path(model_path, child).resolve())
        if posixpath.normpath(mid) == "." or real in stack:
            raise LoadError(f"module '{mid}' is the folder of a Router that contains it: its routes form a cycle",
                            path=path, hint="each module id in router_config.json must name its own sub-folder")
        if _is_router_type(config["types"][mid]) and Path(model_path, child).is_dir():
            child_config, child_path = _read_router_config(model_path, child, **hub)
            _check_acyclic(model_path, child, child_config, child_path, stack, hub)


def _read_router_config(model_path: str, subfolder: str = "", **hub: Any) -> tuple[dict[str, Any], str]:
    path = (Module.load_file_path(model_path, CONFIG_NAME, subfolder, **hub)
            or Module.load_file_path(model_path, LEGACY_CONFIG_NAME, subfolder, **hub))
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


def load_router(cls: type[Router], model_path: str, subfolder: str = "", overrides: Mapping[str, Any] | None = None,
                **kwargs: Any) -> Router:
    """Build a Router from its saved folder; module ids used by several routes are loaded once (shared)."""
    from stpipe.formats.module_io import load_module

    hub = {k: kwargs.get(k) for k in ("token", "cache_folder", "revision")}
    hub["local_files_only"] = bool(kwargs.get("local_files_only", False))
    config, path = read_router_config(model_path, subfolder, **hub)
    params = dict(config["parameters"])
    for key, value in (overrides or {}).items():
        if key not in PARAMS:
            raise ConfigError([Problem("check.router.load-override", (key,), f"'{key}' cannot be set on a Router "
                                       f"loaded from {path}", expected="one of " + ", ".join(PARAMS))])
        params[key] = value
    try:
        cls.check_params(list(config["structure"]), **params)
    except ConfigError as exc:
        if overrides:
            raise
        raise LoadError("; ".join(p.message for p in exc.problems), path=path) from None
    built: dict[str, nn.Module] = {}
    sub_modules: dict[str, list[nn.Module]] = {}
    for route, ids in config["structure"].items():
        for mid in ids:
            if mid not in built:
                sub = posixpath.join(subfolder, mid) if subfolder else mid
                built[mid] = load_module(config["types"][mid], model_path, sub, where=path, **kwargs)
        sub_modules[route] = [built[mid] for mid in ids]
    return cls(sub_modules, **params)


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


def _route_nodes(structure: Mapping[str, list[tuple[Hashable, str]]],
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


def router_node(router: Router, child_node: Callable[[nn.Module, str], dict[str, Any]] | None = None
                ) -> dict[str, Any]:
    """``{type: Router, sub_modules: {route: [node, ...]}, default_route, allow_empty_key, route_mappings: [...]}``.

    ``child_node(module, module_id)`` gives each module's node (default: registry name + config dict); a
    module instance used by several routes gets ``id: <module_id>`` at its first use, ``{ref: <id>}`` after."""
    from stpipe.registry import name_of

    def default(module: nn.Module, _mid: str) -> dict[str, Any]:
        return {"type": name_of(module), **(module.get_config_dict() if hasattr(module, "get_config_dict") else {})}

    make = child_node or default
    entries = module_ids(router)
    modules = {id(module): module for route in entries.values() for module, _, _ in route}
    subs = _route_nodes({r: [(id(module), mid) for module, mid, _ in route] for r, route in entries.items()},
                        lambda key, mid: make(modules[key], mid))
    return {"type": "Router", "sub_modules": subs, "default_route": router.default_route,
            "allow_empty_key": router.allow_empty_key, "route_mappings": yaml_mappings(router.route_mappings)}


def router_node_from_dir(model_path: str, subfolder: str = "",
                         child_node: Callable[[str, str, str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The YAML node of a saved Router without loading any module: ``child_node(type_ref, folder, module_id)``
    gives each module's node (default ``{type: <registry name>, load_from: <folder>}``)."""
    from stpipe.registry import find

    config, _ = read_router_config(model_path, subfolder)

    def default(type_ref: str, folder: str, _mid: str) -> dict[str, Any]:
        spec = find(type_ref)
        return {"type": spec.name if spec else type_ref, "load_from": folder}

    make = child_node or default
    subs = _route_nodes({r: [(mid, mid) for mid in ids] for r, ids in config["structure"].items()},
                        lambda mid, _: make(config["types"][mid], os.path.join(model_path, subfolder, mid), mid))
    params = config["parameters"]
    out: dict[str, Any] = {"type": "Router", "sub_modules": subs}
    for key in ("default_route", "allow_empty_key"):
        if key in params:
            out[key] = params[key]
    out["route_mappings"] = yaml_mappings(params["route_mappings"])
    return out


def describe_routes(params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
    """Static IO of a Router node: the features every route produces (the dimension where all routes agree).

    A fallback for graph checks that do not walk routes themselves; anything it cannot follow (an unknown
    type, a ``ref`` to a node outside the Router, a failing ``describe``) makes it return an empty FeatureIO."""
    from stpipe.registry import find

    subs = params.get("sub_modules")
    if not isinstance(subs, Mapping) or not subs:
        return FeatureIO()
    by_id: dict[str, Mapping[str, Any]] = {}
    results: list[dict[str, int | None]] = []
    for nodes in subs.values():
        feats: dict[str, int | None] = dict(upstream)
        for node in nodes if isinstance(nodes, list) else []:
            if isinstance(node, Mapping) and "ref" in node:
                node = by_id.get(node["ref"])
            if not isinstance(node, Mapping) or (spec := find(str(node.get("type")))) is None:
                return FeatureIO()
            if isinstance(node.get("id"), str):
                by_id[node["id"]] = node
            child = {k: v for k, v in node.items() if k not in ("type", "id", "load_from")}
            try:
                feats.update(spec.cls.describe(child, feats, ctx).produces)
            except (StpipeError, ValueError, TypeError, KeyError, ImportError):
                return FeatureIO()
        results.append(feats)
    common = set(results[0]).intersection(*results[1:])
    produces = {}
    for key in sorted(common):
        dims = {r[key] for r in results}
        produces[key] = dims.pop() if len(dims) == 1 else None
    return FeatureIO(produces=produces)
