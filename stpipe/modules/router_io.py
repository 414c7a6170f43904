"""The Router's runtime side of its files: module ids, saving each module's state, loading its modules, and the
YAML node of a built Router. The file format itself (``router_config.json``, mapping keys, the node of a saved
Router read without loading a module) is :mod:`stpipe.formats.router`; this module adds what needs module
instances (torch).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from torch import nn

from stpipe.contracts.pipeline import NODE_KEYS
from stpipe.errors import ConfigError, LoadError, Problem, StpipeError
from stpipe.formats.router import PARAMS, read_router_config, route_nodes, write_router_config, yaml_mappings
from stpipe.modules.module import FeatureIO
from stpipe.registry import find, name_of, st_type_of

if TYPE_CHECKING:
    from stpipe.modules.router import Router


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
    write_router_config(output_path, types, structure, {"default_route": router.default_route,
                                                         "allow_empty_key": router.allow_empty_key,
                                                         "route_mappings": router.route_mappings})


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


def router_node(router: Router, child_node: Callable[[nn.Module, str], dict[str, Any]] | None = None
                ) -> dict[str, Any]:
    """``{type: Router, sub_modules: {route: [node, ...]}, default_route, allow_empty_key, route_mappings: [...]}``.

    ``child_node(module, module_id)`` gives each module's node (default: registry name + config dict); a
    module instance used by several routes gets ``id: <module_id>`` at its first use, ``{ref: <id>}`` after."""
    def default(module: nn.Module, _mid: str) -> dict[str, Any]:
        return {"type": name_of(module), **(module.get_config_dict() if hasattr(module, "get_config_dict") else {})}

    make = child_node or default
    entries = module_ids(router)
    modules = {id(module): module for route in entries.values() for module, _, _ in route}
    subs = route_nodes({r: [(id(module), mid) for module, mid, _ in route] for r, route in entries.items()},
                        lambda key, mid: make(modules[key], mid))
    return {"type": "Router", "sub_modules": subs, "default_route": router.default_route,
            "allow_empty_key": router.allow_empty_key, "route_mappings": yaml_mappings(router.route_mappings)}


def describe_routes(params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
    """Static IO of a Router node: the features every route produces (the dimension where all routes agree).

    A fallback for graph checks that do not walk routes themselves; anything it cannot follow (an unknown
    type, a ``ref`` to a node outside the Router, a failing ``describe``) makes it return an empty FeatureIO."""
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
            child = {k: v for k, v in node.items() if k not in NODE_KEYS}
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
