"""sentence-transformers 6.2 model directories ⇄ :class:`~stpipe.pipeline.Pipeline`.

* :func:`load` reads ``modules.json`` + ``config_sentence_transformers.json`` (a plain Hugging Face
  directory gets Transformer + mean Pooling), loading every module through the registry;
* :func:`save` writes exactly 6.2's layout, atomically: everything goes to a temporary directory next to
  the target, which is then swapped in with renames, so an interrupted save leaves an existing model intact;
* :func:`to_definition` turns a saved directory into a model definition (``stpipe import``), see
  :func:`stpipe.formats.module_io.saved_module_node`.

Every problem with a file is a :class:`~stpipe.errors.LoadError` naming that file.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import platform
import shutil
import tempfile
import uuid
from collections import OrderedDict
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import torch

from stpipe import registry
from stpipe.errors import LoadError, StpipeError
from stpipe.formats.module_io import load_module
from stpipe.modules.module import Module, check_relative, read_json
from stpipe.pipeline import MODEL_TYPES, Pipeline
from stpipe.resources import resolve_model_path
from stpipe.similarity import SIMILARITY_NAMES

logger = logging.getLogger("stpipe")

ST_VERSION = "6.2.0"  # the sentence-transformers format version stpipe writes
MODULES_JSON = "modules.json"
MODEL_CONFIG = "config_sentence_transformers.json"


# ============================================================================================== loading
def load(
    path: str | os.PathLike,
    *,
    device: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    token: bool | str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    processor_kwargs: dict[str, Any] | None = None,
    config_kwargs: dict[str, Any] | None = None,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
    similarity_fn_name: str | None = None,
    truncate_dim: int | None = None,
    max_active_dims: int | None = None,
) -> Pipeline:
    """Load a sentence-transformers model directory (or a cached hub id, or the bundled model's name).

    ``prompts``/``default_prompt_name``/``similarity_fn_name``/``truncate_dim``/``max_active_dims`` win over
    the saved values (saved prompts fill only the names not given). ``pytorch_model.bin`` files are refused
    unless ``allow_pickle=True``; custom module types need ``trust_remote_code=True`` and a registration.
    """
    hub = dict(token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
    root = locate(path, **hub)
    loader = dict(hub, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, model_kwargs=model_kwargs,
                  processor_kwargs=processor_kwargs, config_kwargs=config_kwargs)
    config, config_file = read_model_config(root)
    model_type = config.get("model_type", "SentenceTransformer")
    entries = read_modules_json(root)
    if entries is None:
        modules: Any = default_modules(root, model_type, loader)
        module_kwargs: dict[str, list[str]] = {}
    else:
        modules, module_kwargs = OrderedDict(), {}
        for entry in entries:
            modules[entry["name"]] = _load_entry(root, entry, loader)
            if entry.get("kwargs"):
                module_kwargs[entry["name"]] = list(entry["kwargs"])
    merged = {"query": None, "document": None, **(prompts or {})}
    for name, text in (config.get("prompts") or {}).items():
        if merged.get(name) is None:
            merged[name] = text
    saved_sim = config.get("similarity_fn_name")
    options = dict(
        prompts=merged,
        default_prompt_name=default_prompt_name or config.get("default_prompt_name"),
        similarity_fn_name=similarity_fn_name or (saved_sim if saved_sim in SIMILARITY_NAMES else None),
    )
    if model_type == "SparseEncoder":
        options["max_active_dims"] = max_active_dims or config.get("max_active_dims")
    else:
        options["truncate_dim"] = truncate_dim or config.get("truncate_dim")
    try:
        return Pipeline(modules, name=Path(root).name, model_type=model_type, device=device,
                        module_kwargs=module_kwargs, **options)
    except (ValueError, TypeError) as exc:
        raise LoadError(str(exc), path=config_file or str(root)) from None


def locate(path: str | os.PathLike, **hub: Any) -> str:
    """The local directory of a model: a directory, a bundled model name, or a hub id in the local cache."""
    name = resolve_model_path(str(path))
    p = Path(name).expanduser()
    if p.is_dir():
        return str(p)
    if p.exists():
        raise LoadError("expected a model directory, found a file", path=str(p))
    if p.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name:
        raise LoadError("model directory not found", path=str(p),
                        hint="check the path; stpipe.load expects a directory saved by sentence-transformers/stpipe")
    try:
        found = Module.load_dir_path(name, **hub)
    except LoadError as exc:  # found nowhere (offline), or its one download failed: say where stpipe looked
        why = str(exc).split("\n    hint:")[0]
        raise LoadError(f"model directory not found, and '{name}' is not in the Hugging Face cache ({why})",
                        path=name, hint=exc.hint or "pass a local directory") from exc
    if found is None:
        raise LoadError("model directory not found", path=name)
    return found


def read_model_config(root: str) -> tuple[dict[str, Any], str | None]:
    """``config_sentence_transformers.json`` (checked: model type, requirements), or ``{}`` if absent."""
    f = Path(root, MODEL_CONFIG)
    if not f.is_file():
        return {}, None
    config = read_json(f)
    if not isinstance(config, dict):
        raise LoadError(f"expected a JSON object, found {type(config).__name__}", path=str(f))
    if config.get("model_type", "SentenceTransformer") not in MODEL_TYPES:
        raise LoadError(f"model_type {config['model_type']!r} is not supported", path=str(f),
                        hint=f"stpipe runs {' and '.join(MODEL_TYPES)} models")
    if not isinstance(config.get("prompts") or {}, dict):
        raise LoadError("'prompts' must be a JSON object of name → text", path=str(f))
    check_requirements(config.get("requirements"), str(f))
    saved = (config.get("__version__") or {}).get("sentence_transformers")
    if isinstance(saved, str) and _version_tuple(saved) > _version_tuple(ST_VERSION):
        logger.warning("%s was written by sentence-transformers %s; stpipe follows the %s format", f, saved,
                       ST_VERSION)
    return config, str(f)


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


def check_requirements(requirements: Any, where: str) -> None:
    """Refuse to load a model whose declared package requirements are not met (before any module loads)."""
    if not requirements:
        return
    if not isinstance(requirements, dict):
        logger.warning("%s: ignoring 'requirements' (expected an object of version specifiers)", where)
        return
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    unmet = []
    for package, req in requirements.items():
        package = {"pytorch": "torch"}.get(package, package)
        spec = req.get("specifier", "") if isinstance(req, dict) else req
        reason = req.get("reason", "") if isinstance(req, dict) else ""
        try:
            installed = platform.python_version() if package == "python" else dist_version(package)
        except PackageNotFoundError:
            installed = None
        try:
            if installed is not None and SpecifierSet(str(spec), prereleases=True).contains(Version(installed)):
                continue
        except Exception as exc:  # an unparsable specifier only warns
            logger.warning("%s: cannot check requirement %s%s: %s", where, package, spec, exc)
            continue
        found = f"{installed} is installed" if installed else "it is not installed"
        unmet.append(f"{package}{spec} ({found}){' — ' + reason if reason else ''}")
    if unmet:
        raise LoadError("the model requires " + "; ".join(unmet), path=where,
                        hint="install compatible versions: pip install -U " + " ".join(
                            f'"{u.split(" ")[0]}"' for u in unmet if not u.startswith("python")))


def read_modules_json(root: str) -> list[dict[str, Any]] | None:
    """The checked entries of ``modules.json`` (``name`` filled in), or None when there is none."""
    f = Path(root, MODULES_JSON)
    if not f.is_file():
        return None
    data = read_json(f)
    if not isinstance(data, list) or not data:
        raise LoadError("expected a non-empty JSON list of modules", path=str(f),
                        hint='each entry: {"idx": 0, "name": "0", "path": "", "type": "<class path>"}')
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str) \
                or not isinstance(entry.get("path", ""), str):
            raise LoadError(f"entry {i} must be an object with a string 'type' and 'path'", path=str(f))
        extra = entry.get("kwargs", [])
        if not isinstance(extra, list) or not all(isinstance(k, str) for k in extra):
            raise LoadError(f"entry {i}: 'kwargs' must be a list of keyword-argument names", path=str(f))
        try:
            check_relative(entry.get("path", ""))
        except LoadError as exc:
            raise LoadError(f"entry {i}: {str(exc).splitlines()[0]}", path=str(f)) from None
        entry.setdefault("path", "")
        entry["name"] = str(entry.get("name", entry.get("idx", i)))
    return data


def _load_entry(root: str, entry: dict[str, Any], loader: dict[str, Any]) -> Module:
    where = str(Path(root, MODULES_JSON))
    folder = Path(root, entry["path"])
    try:
        return load_module(entry["type"], root, entry["path"], where=where, **loader)
    except StpipeError:
        raise
    except Exception as exc:
        bad = diagnose(folder)
        raise LoadError(f"cannot load module '{entry['name']}' ({entry['type']}): {type(exc).__name__}: {exc}",
                        path=bad or str(folder), hint="the file is truncated or corrupt" if bad else None) from exc


def diagnose(folder: Path) -> str | None:
    """The first unreadable JSON or safetensors file directly inside ``folder``, if any."""
    from safetensors import safe_open

    for f in sorted(folder.glob("*.json")):
        try:
            read_json(f)
        except LoadError:
            return str(f)
    for f in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(f), "pt"):
                pass
        except Exception:
            return str(f)
    return None


def default_modules(root: str, model_type: str, loader: dict[str, Any]) -> list[Module]:
    """No ``modules.json``: Transformer + mean Pooling (lasttoken for causal LMs), or, for a SparseEncoder,
    a fill-mask Transformer + SpladePooling(max)."""
    try:
        if model_type == "SparseEncoder":
            transformer = registry.get("Transformer")(root, transformer_task="fill-mask", **_hf_kwargs(loader))
            return [transformer, registry.get("SpladePooling")(pooling_strategy="max")]
        transformer = load_module("Transformer", root, "", where=str(Path(root, "config.json")), **loader)
    except StpipeError:
        raise
    except Exception as exc:
        bad = diagnose(Path(root))
        raise LoadError(f"cannot load a Hugging Face model: {type(exc).__name__}: {exc}", path=bad or root) from exc
    modules: list[Module] = [transformer]
    if getattr(transformer, "module_output_name", "token_embeddings") == "token_embeddings":
        hf = read_json(Path(root, "config.json")) if Path(root, "config.json").is_file() else {}
        arch = (hf.get("architectures") or [""])[0]
        causal = arch.endswith("ForCausalLM") and hf.get("is_causal", True) is not False
        modules.append(registry.get("Pooling")(transformer.get_embedding_dimension(),
                                               "lasttoken" if causal else "mean"))
    return modules


def _hf_kwargs(loader: dict[str, Any]) -> dict[str, Any]:
    shared = {k: loader[k] for k in ("token", "revision", "local_files_only", "trust_remote_code")
              if loader.get(k) not in (None, False)}
    return {k: {**shared, **(loader.get(k) or {})} for k in ("model_kwargs", "processor_kwargs", "config_kwargs")}


# ============================================================================================== saving
def save(pipeline: Pipeline, path: str | os.PathLike, safe_serialization: bool = True, *,
         create_model_card: bool = True) -> None:
    """Write ``pipeline`` to ``path`` in sentence-transformers 6.2's layout, replacing an existing model
    directory atomically. A non-empty directory that does not hold a model is never replaced."""
    target = Path(path).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise LoadError("cannot save a model here: it is a file", path=str(target))
    if target.is_dir() and any(target.iterdir()) and not any(
            (target / f).exists() for f in (MODULES_JSON, MODEL_CONFIG, "config.json")):
        raise LoadError("refusing to replace a non-empty directory that does not hold a saved model",
                        path=str(target), hint="save into a new or empty directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write_model_dir(pipeline, tmp, safe_serialization, create_model_card=create_model_card)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def model_config(pipeline: Pipeline) -> dict[str, Any]:
    """The content of ``config_sentence_transformers.json`` for this pipeline."""
    import transformers

    config: dict[str, Any] = {
        "model_type": pipeline.model_type,
        "__version__": {"sentence_transformers": ST_VERSION, "transformers": transformers.__version__,
                        "pytorch": torch.__version__},
        "prompts": dict(pipeline.prompts),
        "default_prompt_name": pipeline.default_prompt_name,
        "similarity_fn_name": pipeline.similarity_fn_name,
    }
    if pipeline.model_type == "SparseEncoder":
        if pipeline.max_active_dims is not None:
            config["max_active_dims"] = pipeline.max_active_dims
    elif pipeline.truncate_dim is not None:
        config["truncate_dim"] = pipeline.truncate_dim
    return config


def write_model_dir(pipeline: Pipeline, out: Path, safe_serialization: bool = True, *,
                    create_model_card: bool = True) -> None:
    """Write the model files into ``out`` (an existing, empty directory)."""
    with open(out / MODEL_CONFIG, "w", encoding="utf8") as fh:
        json.dump(model_config(pipeline), fh, indent=2, sort_keys=True)
    entries = []
    for idx, (name, module) in enumerate(pipeline._modules.items()):
        sub = "" if idx == 0 and getattr(module, "save_in_root", False) else f"{idx}_{type(module).__name__}"
        folder = out / sub
        folder.mkdir(parents=True, exist_ok=True)
        params = inspect.signature(module.save).parameters
        if "safe_serialization" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
            module.save(str(folder), safe_serialization=safe_serialization)
        else:
            module.save(str(folder))
        entry: dict[str, Any] = {"idx": idx, "name": name, "path": sub, "type": registry.st_type_of(module)}
        if pipeline.module_kwargs.get(name):
            entry["kwargs"] = list(pipeline.module_kwargs[name])
        entries.append(entry)
    with open(out / MODULES_JSON, "w", encoding="utf8") as fh:
        json.dump(entries, fh, indent=2)
    if create_model_card:
        (out / "README.md").write_text(model_card(pipeline), encoding="utf8")


def model_card(pipeline: Pipeline) -> str:
    """A minimal README.md."""
    from stpipe import __version__

    tags = ["sentence-transformers", "stpipe", "sparse-encoder" if pipeline.model_type == "SparseEncoder"
            else "sentence-similarity"]
    arch = "\n".join(f"  ({name}): {module!r}" for name, module in pipeline._modules.items())
    return ("---\nlibrary_name: sentence-transformers\ntags:\n" + "".join(f"- {t}\n" for t in tags) + "---\n\n"
            f"# {pipeline.name or 'stpipe model'}\n\n"
            f"A {pipeline.model_type} saved by stpipe {__version__} in the sentence-transformers {ST_VERSION} "
            f"format.\n\n- Similarity function: {pipeline.similarity_fn_name}\n"
            f"- Output dimension: {pipeline.get_embedding_dimension()}\n\n"
            f"## Architecture\n\n```\n{pipeline.model_type}(\n{arch}\n)\n```\n\n"
            "## Usage\n\n```python\nimport stpipe\n\nmodel = stpipe.load(\"path/to/this/model\")\n"
            "embeddings = model.encode([\"The weather is lovely today.\"])\n```\n\n"
            "sentence-transformers loads it too: `SentenceTransformer(\"path/to/this/model\")`.\n")


# ============================================================================================== definition
def to_definition(path: str | os.PathLike, *, relative_to: str | os.PathLike | None = None,
                  trust_remote_code: bool = False, allow_pickle: bool = False) -> dict[str, Any]:
    """A model definition (plain dict) that rebuilds the model saved at ``path`` (``stpipe import``).

    Model-level settings come from ``config_sentence_transformers.json``; each module becomes a node with
    its configuration (see :func:`stpipe.formats.module_io.saved_module_node`: a Transformer points
    ``model_name_or_path`` at its folder, modules with weights get ``load_from``, a Router is expanded into
    its routes with ``id``/``ref`` for shared modules). Paths are absolute unless ``relative_to`` is given;
    the bundled model is referred to by name.
    """
    from stpipe.formats.module_io import NodeContext, saved_module_node

    root = locate(path)
    config, _ = read_model_config(root)
    model_type = config.get("model_type", "SentenceTransformer")
    ctx = NodeContext(root=root, relative_to=relative_to, trust_remote_code=trust_remote_code,
                      allow_pickle=allow_pickle)
    entries = read_modules_json(root)
    if entries is None:
        nodes = [saved_module_node("Transformer", "", ctx)]
        nodes.append({"type": "SpladePooling", "pooling_strategy": "max"} if model_type == "SparseEncoder"
                     else {"type": "Pooling", "pooling_mode": "mean"})
    else:
        nodes = [saved_module_node(e["type"], e["path"], ctx) for e in entries]
    prompts = {"query": "", "document": ""}
    prompts.update({k: "" if v is None else v for k, v in (config.get("prompts") or {}).items()})
    definition: dict[str, Any] = {"name": Path(root).name, "model_type": model_type}
    saved_sim = config.get("similarity_fn_name")
    definition["similarity_fn_name"] = (saved_sim if saved_sim in SIMILARITY_NAMES
                                        else "dot" if model_type == "SparseEncoder" else "cosine")
    definition["prompts"] = prompts
    definition["default_prompt_name"] = config.get("default_prompt_name")
    key = "max_active_dims" if model_type == "SparseEncoder" else "truncate_dim"
    if config.get(key) is not None:
        definition[key] = config[key]
    definition["modules"] = nodes
    return definition
