"""A validated definition → Module instances → a :class:`~stpipe.pipeline.Pipeline` (or CrossEncoder).

Nodes are instantiated in document order, each ``type`` through the registry only; ``{ref: id}`` returns the
instance declared earlier with that ``id``; ``load_from`` builds with ``cls.load(dir, overrides=params)``; a class
with ``build_from_node`` (Router) builds its own children through the builder. After each module of a sequence
(top level or a Router route) the builder calls ``module.bind_upstream(previous.get_embedding_dimension())``. Any
error a constructor or loader raises for bad input becomes a :class:`ConfigError` naming the node's config path
(codes ``build.*``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch

from stpipe import registry
from stpipe.contracts.pipeline import NODE_KEYS, PATH_PARAMS, PIPELINE_KEYS
from stpipe.cross_encoder import CrossEncoder
from stpipe.errors import ArgumentError, ConfigError, LoadError, Problem, StpipeError, config_error, did_you_mean
from stpipe.hardware import DTYPES, TORCH_NAMES, resolve_dtype
from stpipe.modules.module import Module
from stpipe.pipeline import Pipeline, default_device
from stpipe.resources import local_model, resolve_model_path

#: exceptions a constructor or loader raises for bad input; wrapped into ConfigError with the node's path.
#: KeyError and AttributeError are not among them: they are bugs, and surface as such.
INPUT_ERRORS = (ValueError, TypeError, OSError, RuntimeError, ImportError)


def build_definition(data: dict[str, Any], original: dict[str, Any], *, device: str | None,
                     trust_remote_code: bool | None, base_dir: str | os.PathLike | None,
                     allow_pickle: bool = False) -> Pipeline:
    """Build a definition (already validated, or not to be): ``original`` is what the Pipeline records."""
    trust = bool(data.get("trust_remote_code", False)) if trust_remote_code is None else trust_remote_code
    builder = Builder(base_dir=base_dir, trust_remote_code=trust, allow_pickle=allow_pickle,
                      dtype=torch_dtype_of(data.get("dtype"), device))
    modules = data.get("modules")
    if not isinstance(modules, list) or not modules:
        raise config_error("build.no-modules", ("modules",), "a model definition needs a non-empty `modules` list",
                           expected="a list of module nodes", found=repr(modules))
    built = [builder.node(node, ("modules", i)) for i, node in enumerate(modules)]
    kwargs = {k: data[k] for k in PIPELINE_KEYS if data.get(k) is not None}
    cls = Pipeline
    if kwargs.get("model_type") == "CrossEncoder":
        cls = CrossEncoder
    elif "activation_fn" in kwargs:
        raise config_error("build.pipeline.activation_fn", ("activation_fn",), "activation_fn applies to a "
                           "CrossEncoder only", hint="set model_type: CrossEncoder, or remove activation_fn")
    try:
        return cls(built, device=device, definition=original, **kwargs)
    except ArgumentError as exc:  # the Pipeline names the argument: the definition's key of the same name
        raise config_error(f"build.pipeline.{exc.key}", (exc.key,), str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise config_error("build.pipeline", (), str(exc)) from None


def torch_dtype_of(name: Any, device: str | None = None) -> Any:
    """The definition's ``dtype`` as a torch dtype (``auto`` resolved for ``device``), None when unset (weights
    stay as Hugging Face loads them, as in sentence-transformers); a ConfigError naming ``dtype`` when invalid."""
    if name is None:
        return None
    try:
        resolved = resolve_dtype(name, device or default_device())
    except (ValueError, TypeError) as exc:
        raise config_error("build.dtype", ("dtype",), str(exc), expected=" | ".join(DTYPES), found=repr(name),
                           hint=did_you_mean(str(name), DTYPES) or "fp32 is the default") from None
    return getattr(torch, TORCH_NAMES[resolved])


class Builder:
    """Instantiates nodes; remembers ``id``s (for ``ref``) and built modules by config path (for
    ``bind_upstream`` along a sequence: node ``(..., i)`` is bound to node ``(..., i - 1)``)."""

    def __init__(self, base_dir: str | os.PathLike | None = None, trust_remote_code: bool = False,
                 allow_pickle: bool = False, dtype: Any = None) -> None:
        self.allow_pickle = allow_pickle
        self.dtype = dtype  # a torch dtype (the definition's ``dtype`` resolved), or None: leave as loaded
        self.base_dir = base_dir
        self.trust_remote_code = trust_remote_code
        self.ids: dict[str, Module] = {}
        self.by_path: dict[tuple, Module] = {}

    def node(self, node: Any, path: tuple) -> Module:
        """Build one node (``build_child`` for classes with ``build_from_node``)."""
        path = tuple(path)
        module = self._make(node, path)
        prev = self.by_path.get(self._upstream_path(path))
        if prev is not None:
            try:
                dim = prev.get_embedding_dimension()
            except INPUT_ERRORS:
                dim = None
            try:
                module.bind_upstream(dim)
            except INPUT_ERRORS as exc:
                raise self._wrap(exc, "build.bind", path, type(module).__name__) from None
        self.by_path[path] = module
        return module

    @staticmethod
    def _upstream_path(path: tuple) -> tuple | None:
        """The node whose output this node receives: the previous item of its list, or — for the first module
        of a Router route (``…, "sub_modules", route, 0``) — whatever comes before the Router."""
        if not path or not isinstance(path[-1], int):
            return None
        if path[-1] > 0:
            return (*path[:-1], path[-1] - 1)
        if len(path) >= 4 and path[-3] == "sub_modules":
            return Builder._upstream_path(path[:-3])
        return None

    def _make(self, node: Any, path: tuple) -> Module:
        if not isinstance(node, Mapping):
            raise config_error("build.node", path, "a module node must be a mapping with a `type`",
                               found=type(node).__name__)
        if "ref" in node:
            ref = node["ref"]
            if ref not in self.ids:
                raise config_error("build.unknown-ref", (*path, "ref"), f"no module with id {ref!r} was declared "
                                   "before this reference", hint=did_you_mean(str(ref), self.ids) or
                                   f"declared ids: {sorted(self.ids) or 'none'}")
            return self.ids[ref]
        if "type" not in node:
            raise config_error("build.missing-type", path, "module node has no `type`",
                               hint="available types: " + ", ".join(registry.names()))
        spec = registry.spec(str(node["type"]), path=(*path, "type"))
        try:
            cls = spec.cls
        except INPUT_ERRORS as exc:
            raise self._wrap(exc, "registry.import", (*path, "type"), spec.name) from None
        params = {}
        for k, v in node.items():
            try:
                if k not in NODE_KEYS:
                    params[k] = self._resolve(k, v, node.get("model_kwargs"))
            except LoadError as exc:  # a model found nowhere (offline), or its one download failed
                raise self._wrap(exc, "build.model-path", (*path, k), spec.name) from None
        if self.dtype is not None:
            params = self._with_dtype(cls, params)
        try:
            if hasattr(cls, "build_from_node"):
                module = cls.build_from_node(params, self.node, path)
            elif node.get("load_from") is not None:
                module = self._load(cls, self._resolve("load_from", node["load_from"]), params)
            else:
                module = cls(**self._loader_policy(cls, params))
        except StpipeError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise self._wrap(exc, "build.load", (*path, "load_from") if "load_from" in node else path,
                             spec.name) from None
        except INPUT_ERRORS as exc:
            code = "build.load" if node.get("load_from") is not None else "build.init"
            raise self._wrap(exc, code, path, spec.name, cls=cls) from None
        if (self.dtype is not None and not hasattr(cls, "build_from_node") and "model_kwargs" not in params
                and any(p.is_floating_point() for p in module.parameters())):
            module.to(self.dtype)  # a module loading no Hugging Face model (Dense, StaticEmbedding …)
        if node.get("id") is not None:
            self.ids[str(node["id"])] = module
        return module

    def _with_dtype(self, cls: type, params: dict[str, Any]) -> dict[str, Any]:
        """The pipeline's dtype as ``model_kwargs.dtype`` of a module loading a Hugging Face model (so weights
        load in that dtype); a ``torch_dtype`` / ``dtype`` the node sets wins."""
        if "model_kwargs" not in inspect.signature(cls.__init__).parameters:
            return params
        own = params.get("model_kwargs") or {}
        if not isinstance(own, Mapping) or any(own.get(k) is not None for k in ("torch_dtype", "dtype")):
            return params
        return {**params, "model_kwargs": {**own, "dtype": self.dtype}}

    def _resolve(self, key: str, value: Any, hub: Any = None) -> Any:
        """A model path on this machine; a hub id found nowhere is downloaded once, or (offline) a LoadError
        naming where stpipe looked (:func:`stpipe.resources.local_model`). ``hub``: the node's model_kwargs
        (``revision``, ``cache_dir``, ``token``, ``local_files_only`` pick the Hugging Face cache snapshot)."""
        if key in PATH_PARAMS and isinstance(value, (str, os.PathLike)):
            hub = hub if isinstance(hub, Mapping) else {}
            return local_model(str(value), self.base_dir, revision=hub.get("revision"),
                               cache_folder=hub.get("cache_dir"), token=hub.get("token"),
                               local_files_only=bool(hub.get("local_files_only")))
        if key in ("load_from", "export_dir") and isinstance(value, (str, os.PathLike)):
            return resolve_model_path(str(value), self.base_dir)
        return value

    def _loader_policy(self, cls: type, params: dict[str, Any]) -> dict[str, Any]:
        """Pass trust_remote_code (model/processor/config kwargs) and allow_pickle (model_kwargs.use_safetensors
        left to transformers) to Hugging Face loaders; a value the node sets explicitly wins."""
        if not (self.trust_remote_code or self.allow_pickle):
            return params
        init = inspect.signature(cls.__init__).parameters
        out = dict(params)
        for key in ("model_kwargs", "processor_kwargs", "config_kwargs"):
            if key in init:
                extra = {"trust_remote_code": True} if self.trust_remote_code else {}
                if self.allow_pickle and key == "model_kwargs":
                    extra["use_safetensors"] = None
                out[key] = {**extra, **(out.get(key) or {})}
        return out

    def _load(self, cls: type, directory: str, params: dict[str, Any]) -> Module:
        kwargs: dict[str, Any] = {"overrides": params, "trust_remote_code": self.trust_remote_code,
                                  "allow_pickle": self.allow_pickle}
        sig = inspect.signature(cls.load).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in sig.values()):
            kwargs = {k: v for k, v in kwargs.items() if k in sig}
        return cls.load(directory, **kwargs)

    @staticmethod
    def _wrap(exc: BaseException, code: str, path: tuple, type_name: str,
              cls: Callable[..., Any] | None = None) -> ConfigError:
        hint = getattr(exc, "hint", None)
        message = str(exc).split("\n    hint:")[0] if isinstance(exc, LoadError) else str(exc)
        if isinstance(exc, TypeError) and cls is not None and "argument" in message:
            try:
                names = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "args", "kwargs")]
                hint = f"{type_name} accepts: {', '.join(names)}"
            except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
                pass
        if isinstance(exc, OSError) and not isinstance(exc, LoadError) and hint is None:
            hint = "check the path, or put the model in the Hugging Face cache (stpipe runs offline)"
        return ConfigError([Problem(code=code, path=path, message=f"{type_name} could not be built: "
                                    f"{type(exc).__name__}: {message}", hint=hint)])
