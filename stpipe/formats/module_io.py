"""Load one saved module by its type reference — shared by ``modules.json`` and ``router_config.json``.

The type reference is resolved through the registry only. A reference outside the registry is custom
code: it is refused unless ``trust_remote_code=True``, and even then only classes that were registered
(``stpipe.register``) or declared through the ``stpipe.modules`` entry-point group can be used — stpipe
never imports a module named by a file on disk.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stpipe import registry
from stpipe.errors import ConfigError, LoadError
from stpipe.files import check_relative, read_json
from stpipe.modules.module import InputModule, Module
from stpipe.modules.transformer_setup import strip_security_kwargs
from stpipe.resources import BUNDLED_MODEL_NAMES, bundled_model_dir

#: loader keyword arguments every module's ``load`` receives (modules ignore what they do not use)
LOADER_KEYS = ("token", "cache_folder", "revision", "local_files_only", "trust_remote_code", "allow_pickle",
               "model_kwargs", "processor_kwargs", "config_kwargs", "backend")


def resolve_type(type_ref: str, *, where: str, trust_remote_code: bool = False) -> type[Module]:
    """Class for a saved type reference, with a LoadError naming the file when it is unknown."""
    spec = registry.find(type_ref)
    if spec is None:
        if not type_ref.startswith("sentence_transformers.") and not trust_remote_code:
            raise LoadError(f"module type '{type_ref}' is custom code and trust_remote_code is off", path=where,
                            hint="pass trust_remote_code=True and register the class (stpipe.register) if you "
                                 "trust it")
        try:
            registry.spec(type_ref)
        except ConfigError as exc:
            raise LoadError(exc.problems[0].message, path=where, hint=exc.problems[0].hint) from None
    return spec.cls  # type: ignore[union-attr]


def load_module(type_ref: str, model_path: str, subfolder: str = "", *, where: str = "modules.json",
                **loader_kwargs: Any) -> Module:
    """Load the module saved in ``model_path/subfolder`` whose class is ``type_ref``."""
    check_relative(subfolder)
    cls = resolve_type(type_ref, where=where, trust_remote_code=bool(loader_kwargs.get("trust_remote_code")))
    kwargs = {k: v for k, v in loader_kwargs.items() if k in LOADER_KEYS}
    sig = inspect.signature(cls.load)
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in sig.parameters}
    return cls.load(model_path, subfolder=subfolder, **kwargs)


# --------------------------------------------------------------------- saved module → model definition node
@dataclass
class NodeContext:
    """Where a saved model lives and how paths in the generated definition are written."""

    root: str
    relative_to: str | os.PathLike | None = None
    trust_remote_code: bool = False
    allow_pickle: bool = False

    def path(self, subfolder: str) -> str:
        """``root/subfolder`` as the definition refers to it (the bundled model by name)."""
        p = Path(self.root, subfolder).resolve()
        bundled = bundled_model_dir()
        if bundled is not None and p == bundled.resolve():
            return BUNDLED_MODEL_NAMES[0]
        if self.relative_to is not None:
            return os.path.relpath(p, Path(self.relative_to).resolve())
        return str(p)


def saved_module_node(type_ref: str, subfolder: str, ctx: NodeContext) -> dict[str, Any]:
    """A model-definition node that rebuilds the module saved in ``ctx.root/subfolder``.

    * Transformer: ``model_name_or_path`` = its folder, its saved config, ``max_seq_length`` as
      sentence-transformers would apply it (legacy config value, else the tokenizer's, capped by the
      model's ``max_position_embeddings``) — no weights are read;
    * Router: its routes expanded (``Router.node_from_dir``); a module shared by several routes is
      declared once with ``id`` and referred to with ``{ref: id}``;
    * other input modules: ``load_from`` + their saved config;
    * everything else is loaded (cheap) and described by ``get_config_dict()``; ``load_from`` is added
      when its folder holds more than its config (weights).
    """
    check_relative(subfolder)
    cls = resolve_type(type_ref, where=str(Path(ctx.root, subfolder)), trust_remote_code=ctx.trust_remote_code)
    name = registry.name_of(cls)
    if name == "Router":
        return _router_node(cls, subfolder, ctx)
    if name == "Transformer":
        return _transformer_node(cls, subfolder, ctx)
    if issubclass(cls, InputModule):
        return {"type": name, "load_from": ctx.path(subfolder), **jsonable(cls.load_config(ctx.root, subfolder))}
    module = load_module(type_ref, ctx.root, subfolder, trust_remote_code=ctx.trust_remote_code,
                         allow_pickle=ctx.allow_pickle)
    node: dict[str, Any] = {"type": name}
    folder = Path(ctx.root, subfolder)
    if subfolder and folder.is_dir() and any(f.is_file() and f.name != cls.config_file_name for f in folder.iterdir()):
        node["load_from"] = ctx.path(subfolder)
    node.update(jsonable(module.get_config_dict()))
    return node


#: sentence-transformers' Transformer config file names, newest first (reference §1.5)
TRANSFORMER_CONFIGS = ("sentence_bert_config.json", "sentence_roberta_config.json", "sentence_distilbert_config.json",
                       "sentence_camembert_config.json", "sentence_albert_config.json",
                       "sentence_xlm-roberta_config.json", "sentence_xlnet_config.json")
#: transformer_task → its default (method_output_name, module_output_name) for text (reference §3.1)
TASK_DEFAULTS = {"feature-extraction": ("last_hidden_state", "token_embeddings"),
                 "fill-mask": ("logits", "token_embeddings"), "sequence-classification": ("logits", "scores")}


def _transformer_node(cls: type[Module], subfolder: str, ctx: NodeContext) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in TRANSFORMER_CONFIGS:
        config = cls.load_config(ctx.root, subfolder, config_filename=name)
        if config:
            break
    legacy_len = config.pop("max_seq_length", None)
    lower = config.pop("do_lower_case", False)
    strip_security_kwargs(config, str(Path(ctx.root, subfolder)))  # the caller decides, not a file
    for key in ("model_kwargs", "processor_kwargs", "config_kwargs"):
        if not config.get(key):
            config.pop(key, None)
    task = config.get("transformer_task", "feature-extraction")
    if task == "feature-extraction":
        config.pop("transformer_task", None)
    out_name, feature = TASK_DEFAULTS.get(task, (None, None))
    if config.get("modality_config") == {"text": {"method": "forward", "method_output_name": out_name}} \
            and config.get("module_output_name") == feature:
        del config["modality_config"], config["module_output_name"]  # the task's defaults: leave them implicit
    node: dict[str, Any] = {"type": "Transformer", "model_name_or_path": ctx.path(subfolder), **jsonable(config)}
    max_len = legacy_len if legacy_len is not None else _tokenizer_max_length(Path(ctx.root, subfolder))
    if max_len is not None:
        node["max_seq_length"] = int(max_len)
    if lower:
        node["do_lower_case"] = True
    return node


def _tokenizer_max_length(folder: Path) -> int | None:
    tok = folder / "tokenizer_config.json"
    length = read_json(tok).get("model_max_length") if tok.is_file() else None
    if not isinstance(length, int) or length > 10**8:  # transformers' "no limit" sentinel
        length = None
    cfg = folder / "config.json"
    limit = read_json(cfg).get("max_position_embeddings") if cfg.is_file() else None
    if isinstance(limit, int) and limit > 0:
        length = limit if length is None else min(length, limit)
    return length


def _router_node(cls: type[Module], subfolder: str, ctx: NodeContext) -> dict[str, Any]:
    """Expand a saved Router with its own ``node_from_dir`` (routes, ``id``/``ref``, route_mappings); each
    route module becomes a node through :func:`saved_module_node`."""

    def child(type_ref: str, _folder: str, mid: str) -> dict[str, Any]:
        check_relative(mid)
        return saved_module_node(type_ref, f"{subfolder}/{mid}" if subfolder else mid, ctx)

    if hasattr(cls, "node_from_dir"):
        return jsonable(cls.node_from_dir(ctx.root, subfolder, child_node=child))
    return {"type": registry.name_of(cls), "load_from": ctx.path(subfolder)}


def jsonable(value: Any) -> Any:
    """A JSON/YAML-safe copy: tuples → lists, tuple dict keys → "a+b", other objects → str."""
    if isinstance(value, dict):
        return {("+".join(k) if isinstance(k, tuple) else str(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    return str(value)
