"""``Router``: send a batch through one of several module lists, chosen by task and modality.

The seed's API: ``Router(sub_modules, default_route=None, allow_empty_key=True, route_mappings=None)``
with ``route_mappings`` keyed by ``(task, modality)`` tuples (``None`` = wildcard, a tuple modality is
order-insensitive). stpipe also accepts the YAML form, a list of ``{task?, modality?, route}`` entries.
A route is resolved in the seed's order: ``(task, modality)`` → ``(task, None)`` → ``(None, modality)``
→ ``(None, None)`` → the task as a route name → the modality as a route name → ``default_route``; an
explicit task that nothing maps never falls back to the default.

>>> from stpipe.modules.normalize import Normalize
>>> r = Router({"query": [Normalize()], "document": [Normalize()]},
...            route_mappings=[{"modality": ["text", "image"], "route": "document"}]).eval()
>>> r.default_route, r.resolve_route("query", "text"), r.resolve_route(None, ("text", "image"))
('query', 'query', 'document')
>>> format_route_key((None, ("image", "text")))
"(None, ('image', 'text'))"

Saved, it is sentence-transformers' ``router_config.json``: module ids ``{route}_{index}_{Class}``, one folder
per module *instance* (a module shared by routes is saved once), mapping keys as Python tuple strings.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import posixpath
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, Self

from torch import nn

from stpipe.config.errors import ConfigError, LoadError, Problem, StpipeError, did_you_mean
from stpipe.modules.modality import infer_batch_modality
from stpipe.modules.module import FeatureIO, InputModule, check_relative, read_json

logger = logging.getLogger(__name__)

RouteModality = str | tuple[str, ...] | None
RouteKey = tuple[str | None, RouteModality]
CONFIG_NAME = "router_config.json"
LEGACY_CONFIG_NAME = "config.json"  # the Asym module's file, same schema

__all__ = ["Router", "RouteError", "RouteKey", "RouteModality", "format_route_key", "parse_route_key"]
PARAMS = ("default_route", "allow_empty_key", "route_mappings")
_MODALITY_KEYS = {"text", "image", "audio", "video"}


class RouteError(StpipeError, ValueError):
    """No route can take an input (raised while encoding; the texts are sentence-transformers')."""


def _route_hint(name: Any, routes: list[str]) -> str:
    close = did_you_mean(str(name), routes)
    return (close + " " if close else "") + "available routes: " + ", ".join(routes)


def _label(modality: Any) -> Any:
    """How a modality is shown in messages: ``('image', 'text')`` → ``'image+text'``."""
    return "+".join(str(m) for m in modality) if isinstance(modality, (tuple, list)) else modality


class Router(InputModule):
    """Routes each batch by ``(task, modality)`` to one list of modules (the seed's ``Router``)."""

    config_file_name = CONFIG_NAME
    config_keys = list(PARAMS)
    forward_kwargs = {"task", "modality"}

    def __init__(
        self,
        sub_modules: Mapping[str, list[nn.Module]],
        default_route: str | None = None,
        allow_empty_key: bool = True,
        route_mappings: Mapping[RouteKey, str] | list[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        routes = self._check_routes(sub_modules)
        mappings = self.check_params(routes, default_route, allow_empty_key, route_mappings)
        try:
            self.sub_modules = nn.ModuleDict({r: nn.Sequential(*mods) for r, mods in sub_modules.items()})
        except (KeyError, TypeError) as exc:  # torch refuses some names ("update", "keys", …)
            raise ConfigError([Problem("check.router.route-name", ("sub_modules",), f"torch cannot hold these "
                                       f"routes: {exc}", hint="rename the route")]) from None
        if default_route is None and allow_empty_key:
            default_route = routes[0]
        self.default_route = default_route
        self.allow_empty_key = allow_empty_key
        self.route_mappings: dict[RouteKey, str] = mappings

    # ------------------------------------------------------------------------------------ validation
    @staticmethod
    def _check_routes(sub_modules: Any) -> list[str]:
        if not sub_modules:
            raise ConfigError([Problem("check.router.empty", ("sub_modules",), "The sub_modules dictionary cannot "
                                       "be empty.", hint="give at least one route, e.g. {query: [...], "
                                       "document: [...]}")])
        if not isinstance(sub_modules, Mapping):
            raise ConfigError([Problem("check.router.sub-modules", ("sub_modules",), "sub_modules must map route "
                                       "names to lists of modules", found=type(sub_modules).__name__)])
        problems = []
        for route, mods in sub_modules.items():
            if not isinstance(route, str) or not route or "." in route or any(c in route for c in "/\\\x00"):
                problems.append(Problem("check.router.route-name", ("sub_modules", str(route)),
                                        f"invalid route name {route!r}", expected="a non-empty string without "
                                        "'.', '/' or '\\' (route names become folder names when saved)"))
            elif not isinstance(mods, (list, tuple, nn.Sequential)) or not all(
                    isinstance(m, nn.Module) for m in mods):
                problems.append(Problem("check.router.route-modules", ("sub_modules", route),
                                        f"route '{route}' must be a list of modules", found=repr(mods)[:80]))
        if problems:
            raise ConfigError(problems)
        return list(sub_modules)

    @staticmethod
    def check_params(routes: list[str], default_route: Any = None, allow_empty_key: Any = True,
                     route_mappings: Any = None) -> dict[RouteKey, str]:
        """Validate the non-module parameters against the route names; the mappings as a tuple-keyed dict.

        Raises one ConfigError with every problem (paths relative to the Router node)."""
        problems: list[Problem] = []
        if default_route is not None and (not isinstance(default_route, str) or default_route not in routes):
            problems.append(Problem("check.router.default-route", ("default_route",),
                                    f"Default route '{default_route}' not found in route keys: {routes}",
                                    hint=_route_hint(default_route, routes)))
        if not isinstance(allow_empty_key, bool):
            problems.append(Problem("check.router.allow-empty-key", ("allow_empty_key",), "allow_empty_key must "
                                    "be true or false", found=repr(allow_empty_key)))
        mappings, where, mapping_problems = mappings_from(route_mappings)
        problems += mapping_problems
        for key, route in mappings.items():
            if route not in routes:
                problems.append(Problem("check.router.mapping-route", where[key],
                                        f"route_mappings contains mapping to '{route}' which is not in sub_modules. "
                                        f"Available routes: {routes}",
                                        hint=_route_hint(route, routes)))
        if problems:
            raise ConfigError(problems)
        return mappings

    # ------------------------------------------------------------------------------------ construction
    @classmethod
    def for_query_document(cls, query_modules: list[nn.Module], document_modules: list[nn.Module],
                           default_route: str | None = "document", allow_empty_key: bool = True) -> Self:
        """Routes ``query`` and ``document`` (``encode_query`` / ``encode_document``)."""
        return cls({"query": query_modules, "document": document_modules}, default_route=default_route,
                   allow_empty_key=allow_empty_key)

    @classmethod
    def build_from_node(cls, params: Mapping[str, Any], build_child: Callable[[Any, tuple], nn.Module],
                        path: tuple = ()) -> Self:
        """Build from a YAML node: ``params["sub_modules"]`` holds nodes, each built by ``build_child(node,
        path + ("sub_modules", route, i))``. The parameters are checked before any child is built."""
        path = tuple(path)
        try:
            unknown = [k for k in params if k not in ("sub_modules", *PARAMS)]
            if unknown:
                raise ConfigError([Problem("check.router.unknown-param", (k,), f"unknown Router parameter '{k}'",
                                           hint=did_you_mean(k, ("sub_modules", *PARAMS))) for k in unknown])
            subs = params.get("sub_modules")
            cls._check_routes({r: [] for r in subs} if isinstance(subs, Mapping) and subs else subs)
            bad = [r for r, nodes in subs.items() if not isinstance(nodes, (list, tuple))]
            if bad:
                raise ConfigError([Problem("check.router.route-modules", ("sub_modules", r), f"route '{r}' must "
                                           "be a list of module nodes", found=repr(subs[r])) for r in bad])
            rest = {k: params[k] for k in PARAMS if k in params}
            cls.check_params(list(subs), **rest)
        except ConfigError as exc:
            raise ConfigError([replace(p, path=path + p.path) for p in exc.problems]) from None
        built = {r: [build_child(node, path + ("sub_modules", r, i)) for i, node in enumerate(nodes)]
                 for r, nodes in subs.items()}
        return cls(built, **rest)

    # ------------------------------------------------------------------------------------ routing
    def routes_description(self) -> str:
        """``task='query', task='document' and modality='image+text'`` (the seed's listing)."""
        items = [f"task={r!r}" for r in self.sub_modules]
        for task, modality in self.route_mappings:
            if modality is None:
                items.append(f"task={task!r}")
            elif task is None:
                items.append(f"modality={_label(modality)!r}")
            else:
                items.append(f"(task={task!r}, modality={_label(modality)!r})")
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

    def resolve_route(self, task: str | None = None, modality: Any = None) -> str:
        """The route for this task and modality, in the seed's priority order; RouteError if none."""
        if task is not None and not isinstance(task, str):
            raise RouteError(f"task must be a string or None, got {type(task).__name__}")
        try:
            mod = route_modality(modality)
        except (TypeError, ValueError):
            mod = None
        route = None
        for key in ((task, mod), (task, None), (None, mod), (None, None)):
            if key in self.route_mappings:
                route = self.route_mappings[key]
                break
        else:
            if task and task in self.sub_modules:
                route = task
            elif isinstance(mod, str) and mod and mod in self.sub_modules:
                route = mod
            elif task is not None:
                raise RouteError(f"No route found for task type '{task}'. Available routes: "
                                 f"{self.routes_description()}")
            else:
                route = self.default_route
        if route is None:
            if self.training:
                raise RouteError("You must provide a `router_mapping` argument on the training arguments, or set "
                                 "a default route in the `Router` module.")
            raise RouteError(f"Could not determine route for task={task!r}, modality={_label(modality)!r}. "
                             f"Available routes: {self.routes_description()}. Consider specifying the `task` "
                             "parameter in `model.encode`, or setting a default route in the `Router`.")
        if route not in self.sub_modules:
            raise RouteError(f"Resolved route '{route}' not found in sub_modules. Available submodule keys: "
                             f"{list(self.sub_modules.keys())}")
        return route

    # ------------------------------------------------------------------------------------ running
    def preprocess(self, inputs: list[Any], prompt: str | None = None, task: str | None = None,
                   modality: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Preprocess with the input module of the resolved route; adds ``task`` and ``modality``."""
        inputs = list(inputs)
        if task is None and inputs and isinstance(inputs[0], dict) and not _is_data_dict(inputs[0]):
            inputs, task = _split_task_dicts(inputs)
        if modality is None and inputs:
            try:
                modality = infer_batch_modality(inputs)
            except (TypeError, ValueError):
                modality = None
        route = self.resolve_route(task, modality)
        seq = self.sub_modules[route]
        if len(seq) == 0 or not hasattr(seq[0], "preprocess"):
            raise RouteError(f"route '{route}' has no input module (a module with preprocess) to take raw inputs",)
        features = seq[0].preprocess(inputs, prompt=prompt, task=task, **kwargs)
        features["task"] = task
        if modality is not None:
            features["modality"] = modality
        return features

    def forward(self, features: dict[str, Any], task: str | None = None, modality: Any = None,
                **kwargs: Any) -> dict[str, Any]:
        """Run the resolved route; each module gets the kwargs named in its ``forward_kwargs``."""
        task = features.get("task") if task is None else task
        modality = features.get("modality") if modality is None else modality
        extra = {**kwargs, "task": task, "modality": modality}
        for module in self.sub_modules[self.resolve_route(task, modality)]:
            wanted = getattr(module, "forward_kwargs", ())
            features = module(features, **{k: v for k, v in extra.items() if k in wanted})
        return features

    # ------------------------------------------------------------------------------------ derived
    def unique_modules(self) -> Iterator[tuple[str, int, nn.Module]]:
        """``(route, index, module)`` for the first occurrence of every module instance."""
        seen: set[int] = set()
        for route, seq in self.sub_modules.items():
            for i, module in enumerate(seq):
                if id(module) not in seen:
                    seen.add(id(module))
                    yield route, i, module

    def _input_modules(self) -> list[nn.Module]:
        return [seq[0] for seq in self.sub_modules.values() if len(seq)]

    @property
    def modalities(self) -> list[str | tuple[str, ...]]:
        found: list[Any] = []
        for m in self._input_modules():
            for mod in getattr(m, "modalities", ["text"]):
                if mod not in found:
                    found.append(mod)
        return sorted(found, key=str)

    @property
    def tokenizer(self) -> Any:  # type: ignore[override]
        return next((m.tokenizer for m in self._input_modules() if getattr(m, "tokenizer", None) is not None), None)

    @property
    def max_seq_length(self) -> int | float | None:
        values = [v for m in self._input_modules() if (v := getattr(m, "max_seq_length", None)) is not None]
        if not values:
            return None
        if len(set(values)) > 1:
            logger.warning("Different max_seq_lengths detected: %s. Using the maximum value.", set(values))
        return max(values)

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        for m in self._input_modules():
            if hasattr(m, "max_seq_length"):
                try:
                    m.max_seq_length = value
                except AttributeError:  # read-only (StaticEmbedding: unlimited)
                    pass

    def get_embedding_dimension(self) -> int | None:
        dims = []
        for seq in self.sub_modules.values():
            for m in reversed(list(seq)):
                dim = m.get_embedding_dimension() if hasattr(m, "get_embedding_dimension") else None
                if dim is not None:
                    dims.append(dim)
                    break
        if len(set(dims)) > 1:
            logger.warning("Different embedding dimensions detected across routes: %s. Using the first value.",
                           set(dims))
        return dims[0] if dims else None

    def on_model_ready(self, model: Any) -> None:
        for _, _, module in self.unique_modules():
            if hasattr(module, "on_model_ready"):
                module.on_model_ready(model)

    def get_config_dict(self) -> dict[str, Any]:
        return {"default_route": self.default_route, "allow_empty_key": self.allow_empty_key,
                "route_mappings": dict(self.route_mappings)}

    @classmethod
    def describe(cls, params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
        """Features every route produces (a dimension where the routes agree); see ``describe_routes``."""
        return describe_routes(params, upstream, ctx)

    # ------------------------------------------------------------------------------------ files
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """``router_config.json`` plus one folder per module instance (shared instances saved once)."""
        save_router(self, output_path, safe_serialization=safe_serialization, **kwargs)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             init_defaults: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
             **kwargs: Any) -> Self:
        """Load ``router_config.json`` (or a legacy Asym ``config.json``) and every module it names.

        ``overrides`` may set default_route / allow_empty_key / route_mappings (YAML form allowed)."""
        return load_router(cls, model_name_or_path, subfolder, overrides=overrides, token=token,
                           cache_folder=cache_folder, revision=revision, local_files_only=local_files_only,
                           **kwargs)

    def to_node(self, child_node: Callable[[nn.Module, str], dict[str, Any]] | None = None) -> dict[str, Any]:
        """The YAML form of this Router (``stpipe import``); see :func:`router_node`."""
        return router_node(self, child_node)

    @staticmethod
    def node_from_dir(model_path: str, subfolder: str = "",
                      child_node: Callable[[str, str, str], dict[str, Any]] | None = None) -> dict[str, Any]:
        """The YAML form of a saved Router, read from its ``router_config.json`` without loading modules."""
        return router_node_from_dir(model_path, subfolder, child_node)


def _is_data_dict(x: dict) -> bool:
    return ("role" in x and "content" in x) or (bool(x) and all(k in _MODALITY_KEYS for k in x))


def _split_task_dicts(inputs: list[Any]) -> tuple[list[Any], str]:
    """Backward compatibility: ``[{"query": "x"}, …]`` → ``(["x", …], "query")``."""
    keys = {tuple(x) if isinstance(x, dict) else None for x in inputs}
    if len(keys) != 1 or None in keys or len(next(iter(keys))) != 1:
        raise RouteError("You cannot pass a list of dictionaries with different task types. Please ensure all "
                         "dictionaries have the same task type key, or pass non-dictionary inputs while providing "
                         "the `task` argument.")
    task = next(iter(keys))[0]
    return [x[task] for x in inputs], task


# ============================================================================================ route keys
def route_modality(modality: Any) -> RouteModality:
    """A modality as a mapping key: None, a name, or a *sorted* tuple (lists and tuples, order-insensitive)."""
    if modality is None or isinstance(modality, str):
        return modality
    if isinstance(modality, (list, tuple)) and modality and all(isinstance(m, str) for m in modality):
        return tuple(sorted(modality))
    raise ValueError(f"a modality is a name or a non-empty list of names, not {modality!r}")


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
            problems.append(Problem("check.router.mapping-duplicate", path, f"(task={key[0]!r}, modality="
                                    f"{_label(key[1])!r}) is mapped twice", hint="remove one of the mappings"))
        elif not isinstance(route, str):
            problems.append(Problem("check.router.mapping", path, "a mapping's route must be a route name",
                                    found=repr(route)))
        else:
            out[key], where[key] = route, path
    return out, where, problems


# ============================================================================================ files
def save_router(router: Router, output_path: str, safe_serialization: bool = True, **kwargs: Any) -> None:
    """Write ``router_config.json`` and one folder per module instance."""
    from stpipe.registry import st_type_of

    os.makedirs(output_path, exist_ok=True)
    ids: dict[int, str] = {}
    types: dict[str, str] = {}
    structure: dict[str, list[str]] = {}
    for route, seq in router.sub_modules.items():
        structure[route] = []
        for i, module in enumerate(seq):
            mid = ids.get(id(module))
            if mid is None:
                mid = f"{route}_{i}_{type(module).__name__}"
                if mid in types or not hasattr(module, "save"):
                    raise ValueError(f"cannot save route '{route}' module {i} ({type(module).__name__}): "
                                     + ("its folder name collides with another module's" if mid in types
                                        else "it has no save method"))
                ids[id(module)], types[mid] = mid, st_type_of(module)
                os.makedirs(os.path.join(output_path, mid), exist_ok=True)
                module.save(os.path.join(output_path, mid), safe_serialization=safe_serialization, **kwargs)
            structure[route].append(mid)
    params = {"default_route": router.default_route, "allow_empty_key": router.allow_empty_key,
              "route_mappings": {format_route_key(k): v for k, v in router.route_mappings.items()}}
    with open(os.path.join(output_path, CONFIG_NAME), "w", encoding="utf-8") as fh:
        json.dump({"types": types, "structure": structure, "parameters": params}, fh, indent=4)


def read_router_config(model_path: str, subfolder: str = "", **hub: Any) -> tuple[dict[str, Any], str]:
    """The checked contents of a saved Router's config file and its path; LoadError for anything malformed.

    Returns ``{"types", "structure", "parameters"}`` with ``route_mappings`` parsed to tuple keys."""
    path = (Router.load_file_path(model_path, CONFIG_NAME, subfolder, **hub)
            or Router.load_file_path(model_path, LEGACY_CONFIG_NAME, subfolder, **hub))
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
def _yaml_mappings(mappings: Mapping[RouteKey, str]) -> list[dict[str, Any]]:
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


def router_node(router: Router, child_node: Callable[[nn.Module, str], dict[str, Any]] | None = None
                ) -> dict[str, Any]:
    """``{type: Router, sub_modules: {route: [node, ...]}, default_route, allow_empty_key, route_mappings: [...]}``.

    ``child_node(module, module_id)`` gives each module's node (default: registry name + config dict); a
    module instance used by several routes gets ``id: <module_id>`` at its first use, ``{ref: <id>}`` after."""
    from stpipe.registry import name_of

    def default(module: nn.Module, _mid: str) -> dict[str, Any]:
        return {"type": name_of(module), **(module.get_config_dict() if hasattr(module, "get_config_dict") else {})}

    make = child_node or default
    uses: dict[int, int] = {}
    for seq in router.sub_modules.values():
        for m in seq:
            uses[id(m)] = uses.get(id(m), 0) + 1
    ids: dict[int, str] = {}
    subs: dict[str, list[dict[str, Any]]] = {}
    for route, seq in router.sub_modules.items():
        subs[route] = []
        for i, m in enumerate(seq):
            if id(m) in ids:
                subs[route].append({"ref": ids[id(m)]})
                continue
            mid = ids[id(m)] = f"{route}_{i}_{type(m).__name__}"
            node = make(m, mid)
            subs[route].append(_node_with_id(node, mid) if uses[id(m)] > 1 else dict(node))
    return {"type": "Router", "sub_modules": subs, "default_route": router.default_route,
            "allow_empty_key": router.allow_empty_key, "route_mappings": _yaml_mappings(router.route_mappings)}


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
    structure = config["structure"]
    uses: dict[str, int] = {}
    for ids in structure.values():
        for mid in ids:
            uses[mid] = uses.get(mid, 0) + 1
    done: set[str] = set()
    subs: dict[str, list[dict[str, Any]]] = {}
    for route, ids in structure.items():
        subs[route] = []
        for mid in ids:
            if mid in done:
                subs[route].append({"ref": mid})
                continue
            done.add(mid)
            node = make(config["types"][mid], os.path.join(model_path, subfolder, mid), mid)
            subs[route].append(_node_with_id(node, mid) if uses[mid] > 1 else dict(node))
    params = config["parameters"]
    out: dict[str, Any] = {"type": "Router", "sub_modules": subs}
    for key in ("default_route", "allow_empty_key"):
        if key in params:
            out[key] = params[key]
    out["route_mappings"] = _yaml_mappings(params["route_mappings"])
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
