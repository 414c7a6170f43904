"""One saved module → a definition node (torch-free), and loading one saved module by its type reference —
shared by ``modules.json`` and ``router_config.json``. A built-in type's files are read through its contract;
only a third-party type's class is imported (through the registry) to describe or load it.

The type reference is resolved through the registry only. A reference outside the registry is custom
code: it is refused unless ``trust_remote_code=True``, and even then only classes that were registered
(``stpipe.register``) or declared through the ``stpipe.modules`` entry-point group can be used — stpipe
never imports a module named by a file on disk.
"""

from __future__ import annotations

import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stpipe import registry
from stpipe.contracts.pipeline import MODULES_JSON
from stpipe.contracts.positions import default_max_seq_length, text_config
from stpipe.contracts.transformer import TRANSFORMER, strip_security_kwargs
from stpipe.errors import ConfigError, LoadError
from stpipe.files import check_relative, load_file_path, read_json
from stpipe.formats.model_files import saved_config, saved_params
from stpipe.formats.router import router_node_from_dir
from stpipe.resources import BUNDLED_MODEL_NAMES, bundled_model_dir

if TYPE_CHECKING:
    from stpipe.modules.module import Module

#: loader keyword arguments every module's ``load`` receives (modules ignore what they do not use)
LOADER_KEYS = ("token", "cache_folder", "revision", "local_files_only", "trust_remote_code", "allow_pickle",
               "model_kwargs", "processor_kwargs", "config_kwargs", "backend")


def resolve_type(type_ref: str, *, where: str, trust_remote_code: bool = False) -> type[Module]:
    """Class for a saved type reference (imported now), with a LoadError naming the file when it is unknown."""
    return resolve_spec(type_ref, where=where, trust_remote_code=trust_remote_code).cls


def resolve_spec(type_ref: str, *, where: str, trust_remote_code: bool = False) -> registry.ModuleSpec:
    """The registry entry for a saved type reference (nothing imported), with a LoadError naming the file when it
    is unknown."""
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
    return spec  # type: ignore[return-value]


def load_module(type_ref: str, model_path: str, subfolder: str = "", *, where: str = MODULES_JSON,
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
    spec = resolve_spec(type_ref, where=str(Path(ctx.root, subfolder)), trust_remote_code=ctx.trust_remote_code)
    name = spec.name
    if name == "Router":
        return _router_node(subfolder, ctx)
    if name == "Transformer":
        return _transformer_node(subfolder, ctx)
    folder = Path(ctx.root, subfolder)
    if spec.is_input():
        return {"type": name, "load_from": ctx.path(subfolder), **jsonable(saved_config(spec, str(folder))[0])}
    node: dict[str, Any] = {"type": name}
    config_file = config_file_name(spec)
    if subfolder and folder.is_dir() and any(f.is_file() and f.name != config_file for f in folder.iterdir()):
        node["load_from"] = ctx.path(subfolder)
    node.update(jsonable(_module_config(spec, type_ref, subfolder, ctx)))
    return node


def config_file_name(spec: registry.ModuleSpec) -> str:
    """The config file a module type writes (its contract's; a third-party class's attribute)."""
    if spec.contract is not None:
        return spec.contract.config_file_name
    return getattr(spec.cls, "config_file_name", "config.json")


def _module_config(spec: registry.ModuleSpec, type_ref: str, subfolder: str, ctx: NodeContext) -> dict[str, Any]:
    """A non-input module's parameters as saved: a built-in's config file through its contract (JSON only); a
    third-party module is loaded and asked (``get_config_dict``)."""
    folder = Path(ctx.root, subfolder)
    if spec.contract is None or spec.contract.config_dict is None:
        module = load_module(type_ref, ctx.root, subfolder, trust_remote_code=ctx.trust_remote_code,
                             allow_pickle=ctx.allow_pickle)
        return module.get_config_dict()
    # no folder (a Normalize saved by sentence-transformers < 6): the defaults, as its loader takes them
    return spec.contract.config_dict(saved_params(spec, folder).params if folder.is_dir() else {})


#: sentence-transformers' Transformer config file names, newest first (reference §1.5)
TRANSFORMER_CONFIGS = ("sentence_bert_config.json", "sentence_roberta_config.json", "sentence_distilbert_config.json",
                       "sentence_camembert_config.json", "sentence_albert_config.json",
                       "sentence_xlm-roberta_config.json", "sentence_xlnet_config.json")
#: transformer_task → its default (method_output_name, module_output_name) for text (reference §3.1)
TASK_DEFAULTS = {"feature-extraction": ("last_hidden_state", "token_embeddings"),
                 "fill-mask": ("logits", "token_embeddings"), "sequence-classification": ("logits", "scores")}


def _transformer_node(subfolder: str, ctx: NodeContext) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in TRANSFORMER_CONFIGS:
        config = _read_config(ctx.root, subfolder, name)
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
    tok, cfg = folder / "tokenizer_config.json", folder / "config.json"
    length = read_json(tok).get("model_max_length") if tok.is_file() else None
    hf = text_config(read_json(cfg)) if cfg.is_file() else None
    return default_max_seq_length(length, hf.get("max_position_embeddings") if hf else None)


def _read_config(root: str, subfolder: str, filename: str) -> dict[str, Any]:
    """A saved JSON config object with the Transformer contract's renames, or ``{}`` when absent."""
    path = load_file_path(root, filename, subfolder)
    if path is None:
        return {}
    config = read_json(path)
    if not isinstance(config, dict):
        raise LoadError(f"expected a JSON object, found {type(config).__name__}", path=path)
    for old, new in TRANSFORMER.config_key_renames.items():
        if old in config and new not in config:
            config[new] = config.pop(old)
    return config


def _router_node(subfolder: str, ctx: NodeContext) -> dict[str, Any]:
    """Expand a saved Router (routes, ``id``/``ref``, route_mappings; :func:`stpipe.formats.router.
    router_node_from_dir`); each route module becomes a node through :func:`saved_module_node`."""

    def child(type_ref: str, _folder: str, mid: str) -> dict[str, Any]:
        check_relative(mid)
        return saved_module_node(type_ref, f"{subfolder}/{mid}" if subfolder else mid, ctx)

    return jsonable(router_node_from_dir(ctx.root, subfolder, child_node=child))


def jsonable(value: Any) -> Any:
    """A JSON/YAML-safe copy: tuples → lists, tuple dict keys → "a+b", other objects → str."""
    if isinstance(value, dict):
        return {("+".join(k) if isinstance(k, tuple) else str(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if type(value).__module__ == "torch" and type(value).__name__ == "dtype":  # without importing torch
        return str(value).removeprefix("torch.")
    return str(value)


def literal(value: Any) -> Any:
    """``value`` with every ``${`` in its strings escaped for OmegaConf (``\\${``): text from a saved model is
    data — composed or built, a saved prompt ``${oc.env:SECRET}`` stays that text and never reads the
    environment."""
    if isinstance(value, str):
        return re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", value) if "${" in value else value
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value
