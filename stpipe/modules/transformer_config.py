"""A ``Transformer``'s saved config, read the way sentence-transformers 6.2 reads it, and the arguments
:meth:`stpipe.modules.transformer.Transformer.load` builds from it.

One reading serves both ``Transformer.load_config(folder)`` and ``Transformer.load``: the legacy config names
(:data:`CONFIG_FILES`, newest first), security settings dropped (:func:`strip_security_kwargs`), joint-modality
keys such as ``"image+text"`` turned into tuples, and a config saved before sentence-transformers 6 (no
``modality_config``) given the task's text-only default, as it was trained.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stpipe.contracts.transformer import CONFIG_FILES, KWARG_DICTS, TASKS
from stpipe.modules.transformer_modalities import modality_config_from_json
from stpipe.modules.transformer_setup import check_task, strip_security_kwargs

logger = logging.getLogger("stpipe.modules.transformer")


def task_default_modality(task: Any) -> tuple[dict[str, dict[str, Any]], str]:
    """``(modality_config, module_output_name)`` of a pre-6 save of ``task``: text through ``forward``."""
    _, method_out, feature = TASKS[check_task(task or "feature-extraction")]
    return {"text": {"method": "forward", "method_output_name": method_out}}, feature


def read_saved_config(config: dict[str, Any], where: str = "") -> dict[str, Any]:
    """A saved config dict (``{}`` when there was no file) as ``Transformer.load`` uses it, in place."""
    if not config:
        return config
    strip_security_kwargs(config, where)  # the caller decides, not a file
    if config.get("modality_config") is not None:
        config["modality_config"] = modality_config_from_json(config["modality_config"])
    else:  # a pre-6 save: text only, as it was trained
        config["modality_config"], config["module_output_name"] = task_default_modality(
            config.get("transformer_task"))
    return config


def find_config(read: Callable[..., dict[str, Any]], exists: Callable[[str], bool],
                config_filename: str | None) -> dict[str, Any]:
    """The first saved config among :data:`CONFIG_FILES` (or ``config_filename``) that exists; ``{}`` if none."""
    for name in [config_filename] if config_filename else CONFIG_FILES:
        if exists(name):
            return read(name)
    return {}


def load_arguments(cls: type, model_name_or_path: str, subfolder: str, config: dict[str, Any],
                   hub_kw: Mapping[str, Any], trust_remote_code: bool, user: Mapping[str, Any], backend: str,
                   init_defaults: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None,
                   allow_pickle: bool) -> tuple[str, dict[str, Any]]:
    """``(path, constructor kwargs)``: saved config (read by :func:`read_saved_config`) < hub arguments < loader
    kwargs (``user``: model/processor/config kwargs) < ``overrides``."""
    known = set(inspect.signature(cls.__init__).parameters) - {"self", "model_name_or_path"}
    for key in [k for k in config if k not in known]:
        if config[key] is not None:
            logger.warning("Transformer: ignoring unsupported config key %r", key)
        config.pop(key)
    for k, v in (init_defaults or {}).items():
        config.setdefault(k, v)
    overrides = dict(overrides or {})
    if overrides.get("model_name_or_path"):  # a YAML node naming another model wins over the folder
        model_name_or_path, subfolder = overrides.pop("model_name_or_path"), ""
    overrides.pop("model_name_or_path", None)
    local = Path(model_name_or_path, subfolder)
    path = str(local) if local.is_dir() else str(model_name_or_path)
    hub = {k: v for k, v in {"token": hub_kw.get("token"), "cache_dir": hub_kw.get("cache_folder"),
                             "revision": hub_kw.get("revision"),
                             "local_files_only": hub_kw.get("local_files_only") or None,
                             "trust_remote_code": trust_remote_code or None,
                             "subfolder": None if local.is_dir() else subfolder or None}.items()
           if v is not None}
    hub_model = {"use_safetensors": None} if allow_pickle else {}
    for key in KWARG_DICTS:
        config[key] = {**(config.get(key) or {}), **hub, **(hub_model if key == "model_kwargs" else {}),
                       **(user.get(key) or {}), **(overrides.get(key) or {})}
    config["backend"] = backend
    saved_task = config.get("transformer_task", "feature-extraction")
    if overrides.get("transformer_task", saved_task) != saved_task and "modality_config" not in overrides:
        config.pop("modality_config", None)  # the saved one belongs to the saved task: infer again
        config.pop("module_output_name", None)
    config.update({k: v for k, v in overrides.items() if k not in KWARG_DICTS})
    return path, config
