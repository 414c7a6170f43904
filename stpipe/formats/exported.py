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
:class:`~stpipe.runtimes.encoder.GraphEncoder` nodes (a Router of them for a Router model), which
:func:`stpipe.load`, ``stpipe import`` and ``stpipe encode DIR`` build like any definition; its ``encode`` runs the
runtime. The export is written to a temporary directory and swapped in atomically
(:mod:`stpipe.formats.save_dir`); only a directory that is a saved model or an earlier export is replaced.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from stpipe import files
from stpipe.contracts.pipeline import EXPORT_MANIFEST as MANIFEST
from stpipe.errors import LoadError
from stpipe.files import check_relative, read_json
from stpipe.formats import save_dir
from stpipe.runtimes import FORMATS
from stpipe.runtimes.quantize import OPTIMIZE, QUANTIZE

logger = logging.getLogger("stpipe")


VERSION = 1
GRAPH_FILES = {"onnx": "model.onnx", "openvino": "openvino_model.xml"}
_ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def is_exported(root: str | Path) -> bool:
    return Path(root, MANIFEST).is_file()


# ============================================================================================== export
def _routes(pipeline: Any) -> tuple[dict[str, list[Any]], dict[str, Any] | None]:
    """``{route: modules}`` and the Router's saved parameters (None without a Router)."""
    from stpipe.modules.router import Router, format_route_key

    modules = list(pipeline._modules.values())
    if not isinstance(modules[0], Router):
        return {"": modules}, None
    router = modules[0]
    if len(modules) > 1:  # modules after the Router run on every route: part of each route's graph
        tail = modules[1:]
    else:
        tail = []
    routes = {name: [*seq, *tail] for name, seq in router.sub_modules.items()}
    for name in routes:
        if not _ROUTE_NAME.fullmatch(name):
            raise LoadError(f"route {name!r} cannot be a directory name of the export",
                            hint="rename the route (letters, digits, _ . -)")
    params = {"default_route": router.default_route, "allow_empty_key": router.allow_empty_key,
              "route_mappings": {format_route_key(k): v for k, v in router.route_mappings.items()}}
    return routes, params


def _check_exportable(route: str, modules: list[Any]) -> None:
    from stpipe.modules.transformer import Transformer

    where = f"route '{route}'" if route else "the model"
    first = modules[0]
    if not isinstance(first, Transformer) or first.backend != "torch":
        raise LoadError(f"{where} starts with {type(first).__name__}; a graph export needs a torch Transformer "
                        "(text) as the first module", hint="export the model in sentence-transformers format instead")
    if first.transformer_task != "feature-extraction" or "text" not in first.modality_config or \
            first._lower_in_python:
        raise LoadError(f"{where}: only text feature-extraction Transformers are exported to a graph")
    for m in modules:
        if getattr(m, "include_prompt", True) is False:
            raise LoadError(f"{where}: Pooling(include_prompt=false) needs the prompt length at run time, which "
                            "an exported graph does not take", hint="export with include_prompt: true")


def _write_route(route: str, modules: list[Any], folder: Path, fmt: str, quantize: str | None,
                 optimize: str | None = None, calibration: list[str] | None = None) -> dict[str, Any]:
    """One route's graph and tokenizer into ``folder``; its manifest entry."""
    from stpipe.runtimes import graph_export as gx
    from stpipe.runtimes import quantize as q

    _check_exportable(route, modules)
    first = modules[0]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stpipe-export-") as work:
        fp32 = Path(work, "model.onnx")
        inputs = gx.export_route(modules, fp32)
        graph = fp32
        if optimize:
            graph = q.optimize_onnx(graph, Path(work, "model_opt.onnx"), optimize)
        if quantize == "int8":
            graph = gx.quantize_int8(graph, Path(work, "model_int8.onnx"))
        if quantize == "int8-static":
            feeds = q.calibration_feeds(first.tokenizer, calibration or [], inputs, first.max_seq_length,
                                        batch=q.CALIBRATION_BATCH if fmt == "onnx" else 1)
            if fmt == "onnx":
                q.quantize_static_onnx(graph, folder / GRAPH_FILES["onnx"], feeds)
            else:
                q.quantize_static_openvino(graph, folder / GRAPH_FILES["openvino"], feeds)
        elif fmt == "onnx":
            shutil.copyfile(graph, folder / GRAPH_FILES["onnx"])
        else:
            gx.onnx_to_openvino(graph, folder / GRAPH_FILES["openvino"])
    first.tokenizer.save_pretrained(str(folder))
    dim = None
    for m in reversed(modules):
        fn = getattr(m, "get_embedding_dimension", None) or getattr(m, "get_sentence_embedding_dimension", None)
        dim = fn() if callable(fn) else None
        if dim is not None:
            break
    prefix = f"{route}/" if route else ""
    return {"graph": prefix + GRAPH_FILES[fmt], "tokenizer": route or ".", "inputs": inputs, "dimension": dim,
            "max_seq_length": first.max_seq_length, "query_length": first.query_length,
            "document_length": first.document_length}


def export(pipeline: Any, out: str | Path, fmt: str, *, quantize: str | None = None, overwrite: str = "model",
           optimize: str | None = None, calibration: list[str] | None = None) -> Path:
    """Write ``pipeline`` as one graph per route (see the module docstring) to ``out``, atomically. ``optimize``
    (ONNX only) and ``calibration`` (the texts of ``quantize="int8-static"``): :mod:`stpipe.runtimes.quantize`."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if quantize not in (None, *QUANTIZE):
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)} or None, got {quantize!r}")
    if optimize not in (None, *OPTIMIZE):
        raise ValueError(f"optimize must be one of {', '.join(OPTIMIZE)} or None, got {optimize!r}")
    if optimize and fmt != "onnx":
        raise ValueError("optimize applies to format=onnx (OpenVINO fuses the graph itself when it compiles it)")
    if pipeline.model_type != "SentenceTransformer":
        raise LoadError(f"a {pipeline.model_type} cannot be exported to a graph (dense embedding models only)")
    target = Path(out).expanduser().resolve()
    routes, router = _routes(pipeline)
    with files.replacing(target, save_dir.replace_check(overwrite), "export") as tmp:
        entries = {r: _write_route(r, mods, tmp / r if r else tmp, fmt, quantize, optimize, calibration)
                   for r, mods in routes.items()}
        dims = {e["dimension"] for e in entries.values()}
        manifest = {
            "stpipe_export": VERSION, "format": fmt, "precision": quantize or "fp32", "optimize": optimize,
            "name": pipeline.name,
            "model_type": pipeline.model_type, "similarity_fn_name": pipeline.similarity_fn_name,
            "prompts": dict(pipeline.prompts), "default_prompt_name": pipeline.default_prompt_name,
            "truncate_dim": pipeline.truncate_dim, "embedding_dimension": dims.pop() if len(dims) == 1 else None,
            "routes": entries, "router": router,
            "files": sorted([MANIFEST, *(p.name for p in tmp.iterdir())]),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return target


# ============================================================================================== load
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
    """The model definition of an export: one :class:`~stpipe.runtimes.encoder.GraphEncoder` node per route (a
    Router of them, with the manifest's router parameters, for a Router model) and the manifest's model settings
    — what :func:`stpipe.load`, ``stpipe import`` and ``stpipe encode DIR`` build. ``export_dir`` is absolute, or
    relative to ``relative_to`` when given (resolved against the definition's directory when built)."""
    from stpipe.formats.st import literal
    from stpipe.modules.router import parse_route_key
    from stpipe.modules.router_io import yaml_mappings

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
    definition: dict[str, Any] = {"name": m.get("name") or root.name,
                                  "model_type": m.get("model_type", "SentenceTransformer"),
                                  "similarity_fn_name": m.get("similarity_fn_name") or "cosine",
                                  "prompts": {"query": "", "document": "", **(m.get("prompts") or {})},
                                  "default_prompt_name": m.get("default_prompt_name")}
    if m.get("truncate_dim") is not None:
        definition["truncate_dim"] = m["truncate_dim"]
    definition["modules"] = [first]
    return literal(definition)
