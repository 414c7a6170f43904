"""Whole-pipeline graph exports (``stpipe export MODEL format=onnx|openvino out=DIR [quantize=int8]``) ⇄ Pipeline.

An exported directory holds, per route (one route, ``""``, for a model without a Router)::

    DIR/stpipe_export.json                       the manifest (below)
    DIR/[ROUTE/]model.onnx                       format=onnx: inputs input_ids, attention_mask[, token_type_ids]
    DIR/[ROUTE/]openvino_model.xml + .bin        format=openvino: the same graph as OpenVINO IR
    DIR/[ROUTE/]tokenizer.json, tokenizer_config.json, …   the route's tokenizer

Each graph is the route's whole module list — Transformer → Pooling → Dense → Normalize — with one output,
``sentence_embedding``, runnable by onnxruntime or OpenVINO alone. ``quantize=int8`` quantises the MatMul/Gemm
weights to QInt8, per output channel (ONNX Runtime's ``quantize_dynamic``; the OpenVINO int8 graph is that ONNX
graph converted); ``quantize=int8-static`` calibrates on texts (ONNX Runtime's QDQ ``quantize_static``, or NNCF for
OpenVINO) and ``optimize=O1|O2|O3`` applies ONNX Runtime's transformer fusions (:mod:`stpipe.runtimes.quantize`).
The manifest (``stpipe_export.json``) says what the directory is::

    {"stpipe_export": 1, "format": "onnx", "precision": "fp32" | "int8" | "int8-static", "optimize", "name",
     "model_type",
     "similarity_fn_name", "prompts", "default_prompt_name", "truncate_dim", "embedding_dimension",
     "routes": {ROUTE: {"graph", "tokenizer", "inputs", "dimension", "max_seq_length", "query_length",
                        "document_length"}},
     "router": null | {"default_route", "allow_empty_key", "route_mappings"},   # router_config.json's parameters
     "files": [every entry of DIR the export wrote]}

:func:`to_definition` turns the manifest into a model definition of
:class:`~stpipe.modules.graph_encoder.GraphEncoder` nodes (a Router of them for a Router model), which
:func:`stpipe.load`, ``stpipe import`` and ``stpipe encode DIR`` build like any definition; its ``encode`` runs the
runtime. The export is written to a temporary directory and swapped in atomically
(:mod:`stpipe.formats.save_dir`); only a directory that is a saved model or an earlier export is replaced.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from stpipe.contracts.pipeline import EXPORT_FORMATS as FORMATS
from stpipe.contracts.pipeline import EXPORT_MANIFEST as MANIFEST
from stpipe.contracts.pipeline import default_similarity, truncation_key
from stpipe.errors import LoadError
from stpipe.files import check_relative, read_json
from stpipe.formats.module_io import literal
from stpipe.formats.router import parse_route_key, yaml_mappings

logger = logging.getLogger("stpipe")


VERSION = 1
GRAPH_FILES = {"onnx": "model.onnx", "openvino": "openvino_model.xml"}
_ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def is_exported(root: str | Path) -> bool:
    return Path(root, MANIFEST).is_file()


# ============================================================================================== export
def read_manifest(root: str | Path) -> dict[str, Any]:

    f = Path(root, MANIFEST)
    m = read_json(f)
    if not isinstance(m, dict) or m.get("stpipe_export") != VERSION:
        raise LoadError(f"not an stpipe export manifest (version {VERSION})", path=str(f))
    if m.get("format") not in FORMATS:
        raise LoadError(f"unknown format {m.get('format')!r}; valid: {', '.join(FORMATS)}", path=str(f))
    routes = m.get("routes")
    if not isinstance(routes, dict) or not routes or not all(isinstance(v, dict) for v in routes.values()):
        raise LoadError("'routes' must be a non-empty object of route → graph entry", path=str(f))
    for name, entry in routes.items():
        for key in ("graph", "tokenizer"):
            if not isinstance(entry.get(key), str):
                raise LoadError(f"routes[{name!r}].{key} must be a path inside the export", path=str(f))
            check_relative(entry[key])  # never a file outside the directory
        if not isinstance(entry.get("inputs"), list):
            raise LoadError(f"routes[{name!r}].inputs must be a list of input names", path=str(f))
    if (m.get("router") is None) != (list(routes) == [""]):
        raise LoadError("a Router export names its routes and has 'router'; a plain one has the route \"\"",
                        path=str(f))
    if Path(root, "modules.json").exists():
        raise LoadError("the folder holds both an export manifest and a saved model's modules.json: it is neither "
                        "(a save or an export into it is in progress, or files of two were mixed)", path=str(root),
                        hint="wait for the export to finish, or export / save the model again into a new folder")
    check_contained(Path(root))
    return m


def check_contained(root: Path) -> None:
    """Every file of the export stays inside it: a link (the graph, its weights, a tokenizer file) whose target
    is outside the folder is refused, never followed — except, for an export in the Hugging Face cache, into its
    repository's ``blobs/`` (where the cache keeps every file)."""
    real_root = root.resolve()
    allowed = [real_root]
    if real_root.parent.name == "snapshots":
        allowed.append(real_root.parent.parent / "blobs")
    for folder, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            p = Path(folder, name)
            if not p.is_symlink():
                continue
            real = p.resolve()
            if not any(real == a or a in real.parents for a in allowed):
                raise LoadError(f"'{p.relative_to(root)}' is a link to '{real}', outside the export; stpipe never "
                                "follows a link out of a saved model", path=str(p),
                                hint="copy the file itself into the export folder")


def to_definition(root: str | Path, *, relative_to: str | Path | None = None) -> dict[str, Any]:
    """The model definition of an export: one :class:`~stpipe.modules.graph_encoder.GraphEncoder` node per route (a
    Router of them, with the manifest's router parameters, for a Router model) and the manifest's model settings
    — what :func:`stpipe.load`, ``stpipe import`` and ``stpipe encode DIR`` build. ``export_dir`` is absolute, or
    relative to ``relative_to`` when given (resolved against the definition's directory when built)."""

    root = Path(root).resolve()
    m = read_manifest(root)
    where = os.path.relpath(root, Path(relative_to).resolve()) if relative_to is not None else str(root)

    def node(route: str) -> dict[str, Any]:
        return {"type": "GraphEncoder", "export_dir": where, "route": route}

    if m["router"] is None:
        first = node("")
    else:
        r = m["router"]
        first = {"type": "Router", "sub_modules": {name: [node(name)] for name in m["routes"]},
                 "default_route": r.get("default_route"), "allow_empty_key": r.get("allow_empty_key", True),
                 "route_mappings": yaml_mappings({parse_route_key(k): v
                                                  for k, v in (r.get("route_mappings") or {}).items()})}
    model_type = m.get("model_type", "SentenceTransformer")
    definition: dict[str, Any] = {"name": m.get("name") or root.name, "model_type": model_type,
                                  "similarity_fn_name": m.get("similarity_fn_name") or default_similarity(model_type),
                                  "prompts": {"query": "", "document": "", **(m.get("prompts") or {})},
                                  "default_prompt_name": m.get("default_prompt_name")}
    key = truncation_key(model_type)
    if key is not None and m.get(key) is not None:
        definition[key] = m[key]
    definition["modules"] = [first]
    return literal(definition)
