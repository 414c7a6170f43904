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
per module *instance* (a module shared by routes is saved once), mapping keys as Python tuple strings. Files,
mapping keys and YAML nodes are :mod:`stpipe.formats.router` (the file format) and
:mod:`stpipe.modules.router_io` (module instances).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, Self

from torch import nn

from stpipe.contracts.router import ROUTER, effective_default, mapping_keys
from stpipe.errors import ConfigError, Problem, RouteError, did_you_mean
from stpipe.formats.router import (
    CONFIG_NAME,
    PARAMS,
    RouteKey,
    RouteModality,
    check_router_params,
    format_route_key,
    modality_label,
    parse_route_key,
    route_modality,
    router_node_from_dir,
)
from stpipe.modules.modality import infer_batch_modality
from stpipe.modules.module import FeatureIO, InputModule
from stpipe.modules.router_io import describe_routes, load_router, router_node, save_router
from stpipe.modules.task_dicts import split_task_dicts

logger = logging.getLogger(__name__)

__all__ = ["Router", "RouteError", "RouteKey", "RouteModality", "format_route_key", "parse_route_key"]


class Router(InputModule):
    """Routes each batch by ``(task, modality)`` to one list of modules (the seed's ``Router``)."""

    contract = ROUTER
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
        self.default_route = effective_default(default_route, allow_empty_key, routes)
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
        return check_router_params(routes, default_route, allow_empty_key, route_mappings)

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
                items.append(f"modality={modality_label(modality)!r}")
            else:
                items.append(f"(task={task!r}, modality={modality_label(modality)!r})")
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
        for key in mapping_keys(task, mod):
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
            raise RouteError(f"Could not determine route for task={task!r}, modality="
                             f"{modality_label(mod or modality)!r}. "
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
        if task is None:
            inputs, task = split_task_dicts(inputs)
        if modality is not None:
            try:
                modality = route_modality(modality)
            except ValueError:
                pass
        elif inputs:
            try:
                modality = infer_batch_modality(inputs, self.modalities)
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
        """Set on every route's input module that has one; a warning when none has (as sentence-transformers)."""
        having = [m for m in self._input_modules() if hasattr(m, "max_seq_length")]
        if not having:
            logger.warning("No modules have a max_seq_length attribute to set.")
            return
        for m in having:
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
