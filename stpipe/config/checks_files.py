"""The checks of the files a node names, registered in the one registry of :mod:`stpipe.config.checks`: a
``load_from`` folder exists and its saved config supplies what the node omits (``check.load-from``); every model,
tokenizer and export path is on this machine — a local path, the model store or the Hugging Face cache — or, online,
a hub id the build may still download (``check.model-path``, a warning then). They run after the option and prompt
checks, before the shape checks; importing :mod:`stpipe.config.checks` loads this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path as FsPath
from typing import Any

from stpipe import registry
from stpipe.config.checks import CheckContext, check, nodes_of_type
from stpipe.config.schema import load_schema
from stpipe.errors import Problem
from stpipe.resources import hub_offline, load_from_hint, locate_model, resolve_model_path


@check("check.load-from", before="check.static-dims")
def load_from_exists(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    """``load_from`` is a directory, and its saved config (not weights) supplies the parameters the node omits."""
    for path, node in ctx.nodes:
        lf = node.get("load_from")
        if not isinstance(lf, str) or not lf or "ref" in node:
            continue
        folder = FsPath(resolve_model_path(lf, ctx.base_dir))
        if not folder.is_dir():
            where = f" (relative to {ctx.base_dir})" if ctx.base_dir and not FsPath(lf).is_absolute() else ""
            yield Problem(code="check.load-from", path=path + ("load_from",),
                          message=f"load_from '{lf}' is not a directory{where}",
                          hint=load_from_hint(lf))
            continue
        spec = registry.find(node["type"]) if isinstance(node.get("type"), str) else None
        contract = spec.contract if spec is not None else None
        if contract is None:  # a third-party type: its loader decides what the folder must hold
            continue
        try:
            required = load_schema(spec.schema_file).get("else", {}).get("required", [])
        except Exception:
            continue
        saved_keys = [k for k in required if k in contract.config_keys and k not in node]
        if not saved_keys:
            continue
        cfg_file = folder / contract.config_file_name
        try:
            saved = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = None
        missing = [k for k in saved_keys if not isinstance(saved, dict) or k not in saved]
        if missing:
            yield Problem(code="check.load-from", path=path + ("load_from",),
                          message=f"{spec.name} needs {', '.join(missing)}, found neither in this node nor in "
                                  f"{cfg_file}",
                          hint=f"is '{lf}' a saved {spec.name} folder? otherwise set {', '.join(missing)} here")


def _offline() -> bool:
    return hub_offline()


def _locate(value: str, base_dir: Any, wanted: tuple[str, ...], hub: Any = None) -> tuple[str, str, bool] | None:
    """None when ``value`` names something usable (a file, or a directory holding one of ``wanted``: local, in
    the model store or the Hugging Face cache, see :func:`~stpipe.resources.locate_model`); otherwise
    ``(why not, what to do, whether a download could still find it)``. ``hub``: the node's model_kwargs
    (``revision``, ``cache_dir``), as the builder uses them."""
    hub = hub if isinstance(hub, Mapping) else {}
    loc = locate_model(value, base_dir, revision=hub.get("revision"), cache_folder=hub.get("cache_dir"))
    if loc.path is None:
        return loc.not_found(), loc.hint(), loc.hub_id
    p = FsPath(loc.path)
    if p.is_file():  # a tokenizer.json or idf.json itself; never a model (a directory holding config.json)
        if wanted == ("config.json",):
            return (f"'{value}' is a file, not a model directory", "give the directory that holds the model's "
                    "config.json", False)
        return None
    if any((p / w).is_file() for w in wanted):
        return None
    return (f"'{value}' holds no {' or '.join(wanted)}", "a directory saved with save_pretrained (or a model "
            "folder of the model store / the Hugging Face cache)", False)


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
_PATH_PARAMS = {"Transformer": {"model_name_or_path": ("config.json",), "tokenizer_name_or_path": _TOKENIZER_FILES},
                "StaticEmbedding": {"tokenizer": ("tokenizer.json",)},
                "SparseStaticEmbedding": {"tokenizer": _TOKENIZER_FILES, "path": ("idf.json",)},
                "GraphEncoder": {"export_dir": ("stpipe_export.json",)}}


@check("check.model-path", before="check.static-dims")
def model_paths_exist(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    """Models and tokenizers must be on this machine (a local path, the model store or the Hugging Face cache);
    a hub id found nowhere is an error offline, a warning online (the build then downloads it once)."""
    for type_name, params in _PATH_PARAMS.items():
        for path, node in nodes_of_type(ctx, type_name):
            for key, wanted in params.items():
                value = node.get(key)
                why = _locate(value, ctx.base_dir, wanted, node.get("model_kwargs")) \
                    if isinstance(value, str) and value else None
                if why is None:
                    continue
                message, hint, downloadable = why
                online = downloadable and not _offline()
                if online:  # the builder makes one download attempt (stpipe.resources.download_model)
                    hint = "stpipe tries to download it from the Hugging Face Hub once, when the model is built; " \
                           "if it is not a hub model: " + hint
                yield Problem(code="check.model-path", path=path + (key,), message=message,
                              severity="warning" if online else "error", hint=hint)
