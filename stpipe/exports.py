"""Writing a whole-pipeline graph export (``stpipe export … format=onnx|openvino``): each route (Transformer →
Pooling → Dense → Normalize) as one graph, and the manifest the codec reads back
(:mod:`stpipe.formats.exported`). Atomic through :func:`stpipe.files.replacing`; only a directory that is a saved
model or an earlier export is replaced.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from stpipe import files
from stpipe.errors import LoadError
from stpipe.formats import save_dir
from stpipe.formats.exported import _ROUTE_NAME, FORMATS, GRAPH_FILES, MANIFEST, VERSION
from stpipe.formats.router import format_route_key
from stpipe.modules.router import Router
from stpipe.modules.transformer import Transformer
from stpipe.runtimes import graph_export as gx
from stpipe.runtimes import quantize as q
from stpipe.runtimes.quantize import OPTIMIZE, QUANTIZE


def _routes(pipeline: Any) -> tuple[dict[str, list[Any]], dict[str, Any] | None]:
    """``{route: modules}`` and the Router's saved parameters (None without a Router)."""

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
    """Write ``pipeline`` as one graph per route (see :mod:`stpipe.formats.exported`) to ``out``, atomically.
    ``optimize`` (ONNX only) and ``calibration`` (the texts of ``quantize="int8-static"``):
    :mod:`stpipe.runtimes.quantize`."""
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
