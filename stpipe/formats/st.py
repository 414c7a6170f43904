"""sentence-transformers 6.2 model directories ⇄ :class:`~stpipe.pipeline.Pipeline`.

* :func:`to_definition` turns a saved directory into a model definition (``stpipe import``; see
  :func:`stpipe.formats.module_io.saved_module_node`); a folder without ``modules.json`` gets sentence-transformers'
  default modules (:func:`default_nodes`);
* :func:`load` is that definition built by :func:`stpipe.builder.build` — the one loading path, shared with
  ``stpipe encode DIR``;
* :func:`save` writes exactly 6.2's layout (:mod:`stpipe.formats.layout`), replacing only a directory that is a
  saved model, atomically (:mod:`stpipe.formats.save_dir`).

Every problem with a file is a :class:`~stpipe.errors.LoadError` naming that file; security settings
(``trust_remote_code``, ``allow_pickle``) come only from the caller.
"""

from __future__ import annotations

import logging
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from stpipe import files, registry
from stpipe.contracts.pipeline import EXPORT_MANIFEST
from stpipe.errors import ConfigError, LoadError, StpipeError
from stpipe.files import check_relative, load_dir_path, read_json
from stpipe.formats import save_dir
from stpipe.formats.layout import MODEL_CONFIG, MODULES_JSON, ST_VERSION, model_card, model_config, write_model_dir
from stpipe.formats.requirements import check_requirements, version_tuple
from stpipe.pipeline import MODEL_TYPES, Pipeline
from stpipe.resources import resolve_model_path
from stpipe.similarity import SIMILARITY_NAMES

logger = logging.getLogger("stpipe")

__all__ = ["MODEL_CONFIG", "MODULES_JSON", "ST_VERSION", "load", "locate", "model_card", "model_config", "save",
           "to_definition", "write_model_dir"]


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
    dtype: str | None = None,
    backend: str | None = None,
) -> Pipeline:
    """Load a sentence-transformers model directory (or a cached hub id, or the bundled model's name).

    The one loading path: the directory becomes a model definition (:func:`to_definition`, as for ``stpipe
    import`` / ``stpipe encode DIR``) that :func:`stpipe.builder.build` builds.
    ``model_kwargs``/``processor_kwargs``/``config_kwargs`` (and ``token``/``revision``/``local_files_only``) go to
    every Transformer and win over the saved values; ``prompts``/``default_prompt_name``/``similarity_fn_name``/
    ``truncate_dim``/``max_active_dims`` win over the saved values (saved prompts fill only the names not given).
    ``pytorch_model.bin`` files are refused unless ``allow_pickle=True``; custom module types need
    ``trust_remote_code=True`` and a registration. Security settings come only from these arguments, never from
    the files being loaded. ``dtype`` (fp32 | bf16 | fp16 | auto) is the precision to run in (default: as saved).
    ``backend`` ("onnx" / "openvino") runs every Transformer on its saved graph
    (``onnx/model.onnx``, ``openvino/openvino_model.xml``; see :mod:`stpipe.runtimes.backend_model`). A directory
    written by ``stpipe export … format=onnx|openvino`` is built from its manifest's definition
    (:func:`stpipe.formats.exported.to_definition`: GraphEncoder nodes running its graphs).
    """
    from stpipe.builder import build, torch_dtype_of

    torch_dtype_of(dtype, device)  # a bad dtype is a ConfigError naming `dtype`, before any file is read

    root = locate(path, token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
    definition = to_definition(root, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    definition["prompts"] = {**definition["prompts"], **(prompts or {})}
    given = {"default_prompt_name": default_prompt_name, "similarity_fn_name": similarity_fn_name,
             "truncate_dim": truncate_dim, "max_active_dims": max_active_dims}
    definition.update({k: v for k, v in given.items() if v is not None})
    if dtype is not None:
        definition["dtype"] = dtype
    definition.pop("truncate_dim" if definition["model_type"] == "SparseEncoder" else "max_active_dims", None)
    shared = {k: v for k, v in (("token", token), ("revision", revision), ("local_files_only", local_files_only))
              if v not in (None, False)}
    caller = {"model_kwargs": model_kwargs, "processor_kwargs": processor_kwargs, "config_kwargs": config_kwargs}
    # the caller's kwargs may be Python values (a torch.dtype, a quantization config), not YAML; and a saved model
    # is not held to the static checks of a hand-written definition (a custom module may not describe itself):
    # like sentence-transformers, the constructors and loaders check what they read
    _with_caller_kwargs(definition["modules"], {k: {**shared, **(v or {})} for k, v in caller.items()}, backend)
    try:
        pipeline = build(definition, validate=False, device=device, trust_remote_code=trust_remote_code,
                         allow_pickle=allow_pickle, base_dir=root)
    except ConfigError as exc:
        raise _load_error(exc, root) from None
    return _with_saved_names(pipeline, read_modules_json(root), device)


def _with_caller_kwargs(nodes: list[Any], kwargs: dict[str, dict[str, Any]], backend: str | None = None) -> None:
    """Merge the caller's Hugging Face kwargs (and ``backend``) into every Transformer node (Router routes too)."""
    for node in nodes:
        if not isinstance(node, dict):
            continue
        if node.get("type") == "Transformer":
            if backend is not None:
                node["backend"] = backend
            for key, extra in kwargs.items():
                if extra:
                    node[key] = {**(node.get(key) or {}), **extra}
        for route in (node.get("sub_modules") or {}).values() if isinstance(node.get("sub_modules"), dict) else ():
            _with_caller_kwargs(route if isinstance(route, list) else [], kwargs, backend)


def _load_error(exc: ConfigError, root: str) -> LoadError:
    """The LoadError behind a build error (naming the file), or the build's first problem as a LoadError naming
    the file that holds the value: ``config_sentence_transformers.json`` for model settings, else the module's
    folder."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, LoadError):
            return cause
        cause = cause.__cause__ or cause.__context__
    problem = exc.problems[0]
    where, key = Path(root, MODULES_JSON), problem.path[0] if problem.path else None
    entries = read_modules_json(root) or []
    if key != "modules" and Path(root, MODEL_CONFIG).is_file():
        where = Path(root, MODEL_CONFIG)
    elif key == "modules" and len(problem.path) > 1 and isinstance(problem.path[1], int) \
            and problem.path[1] < len(entries):
        where = Path(root, entries[problem.path[1]]["path"])
    more = f" (and {len(exc.problems) - 1} more problems)" if len(exc.problems) > 1 else ""
    return LoadError(f"{problem.path_str + ': ' if problem.path_str else ''}{problem.message}{more}", path=str(where),
                     hint=problem.hint)


def _with_saved_names(pipeline: Pipeline, entries: list[dict[str, Any]] | None, device: str | None) -> Pipeline:
    """The pipeline with ``modules.json``'s module names and "kwargs" (the definition does not carry them)."""
    if not entries:
        return pipeline
    names = [e["name"] for e in entries]
    module_kwargs = {e["name"]: list(e["kwargs"]) for e in entries if e.get("kwargs")}
    if names == list(pipeline._modules) and not module_kwargs:
        return pipeline
    extra = ({"activation_fn": pipeline.activation_fn} if pipeline.model_type == "CrossEncoder" else
             {"similarity_fn_name": pipeline.similarity_fn_name, "truncate_dim": pipeline.truncate_dim,
              "max_active_dims": pipeline.max_active_dims})
    return type(pipeline)(OrderedDict(zip(names, pipeline._modules.values(), strict=True)), name=pipeline.name,
                          model_type=pipeline.model_type, prompts=pipeline.prompts,
                          default_prompt_name=pipeline.default_prompt_name, device=device,
                          definition=pipeline.definition, module_kwargs=module_kwargs, **extra)


def locate(path: str | os.PathLike, **hub: Any) -> str:
    """The local directory of a model: a directory, a bundled model name, or a hub id in the local cache."""
    name = resolve_model_path(str(path))
    p = Path(name).expanduser()
    if not p.exists() and p.parent.is_dir():
        files.recover(p)  # a save killed between its two renames
    if p.is_dir():
        return str(p)
    if p.exists():
        raise LoadError("expected a model directory, found a file", path=str(p))
    if p.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name:
        raise LoadError("model directory not found", path=str(p),
                        hint="check the path; stpipe.load expects a directory saved by sentence-transformers/stpipe")
    try:
        found = load_dir_path(name, **hub)
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
                        hint=f"stpipe runs {', '.join(MODEL_TYPES)} models")
    if not isinstance(config.get("prompts") or {}, dict):
        raise LoadError("'prompts' must be a JSON object of name → text", path=str(f))
    check_requirements(config.get("requirements"), str(f))
    saved = (config.get("__version__") or {}).get("sentence_transformers")
    if isinstance(saved, str) and version_tuple(saved) > version_tuple(ST_VERSION):
        logger.warning("%s was written by sentence-transformers %s; stpipe follows the %s format", f, saved,
                       ST_VERSION)
    return config, str(f)


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


#: module types whose folder may be missing: sentence-transformers' Normalize saved no files before 6.x (the
#: shipped MiniLM lists 2_Normalize without a folder). Any other missing folder or config is an error: filling
#: a module in with defaults would give other embeddings silently.
OPTIONAL_FOLDERS = ("Normalize",)


def check_entry_files(root: str, entry: dict[str, Any], cls: type) -> None:
    """LoadError when a ``modules.json`` entry's folder, or the config file its module reads, is missing."""
    from stpipe.modules.module import InputModule

    name = registry.name_of(cls)
    if not entry["path"] or name in OPTIONAL_FOLDERS:
        return
    folder = Path(root, entry["path"])
    what = f"modules.json lists module '{entry['name']}' ({name})"
    hint = "restore it from the original model, or remove the entry from modules.json"
    if not folder.is_dir():
        raise LoadError(f"{what} in '{entry['path']}', but that folder is missing", path=str(folder), hint=hint)
    if name == "Router" or issubclass(cls, InputModule):  # their loaders check their own files
        return
    config = folder / cls.config_file_name
    if not config.is_file():
        raise LoadError(f"{what}, but its folder has no {cls.config_file_name}", path=str(config), hint=hint)


def _entry_node(entry: dict[str, Any], ctx: Any) -> dict[str, Any]:
    from stpipe.formats.module_io import resolve_type, saved_module_node

    cls = resolve_type(entry["type"], where=str(Path(ctx.root, MODULES_JSON)), trust_remote_code=ctx.trust_remote_code)
    check_entry_files(ctx.root, entry, cls)
    try:
        return saved_module_node(entry["type"], entry["path"], ctx)
    except StpipeError:
        raise
    except Exception as exc:
        folder = Path(ctx.root, entry["path"])
        bad = diagnose(folder)
        config = folder / cls.config_file_name  # an invalid saved value: the file that holds it
        raise LoadError(f"cannot load module '{entry['name']}' ({entry['type']}): {type(exc).__name__}: {exc}",
                        path=bad or str(config if config.is_file() else folder),
                        hint="the file is truncated or corrupt" if bad else None) from exc


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


def default_nodes(root: str, model_type: str, transformer: dict[str, Any]) -> list[dict[str, Any]]:
    """The modules of a folder without ``modules.json``, as sentence-transformers 6.2 chooses them:
    ``transformer`` (the Transformer node) + Pooling — mean, or lasttoken for a causal LM — when it writes
    token embeddings; for a SparseEncoder, a masked-LM in fill-mask mode + SpladePooling(max)."""
    from stpipe.modules.transformer_setup import describe_output

    f = Path(root, "config.json")
    hf = read_json(f) if f.is_file() else {}
    if not isinstance(hf, dict):
        raise LoadError(f"expected a JSON object, found {type(hf).__name__}", path=str(f))
    archs = [str(a) for a in hf.get("architectures") or [] if isinstance(a, str)] or [""]
    if model_type == "CrossEncoder":
        from stpipe.formats.cross_encoder import default_cross_encoder_nodes

        return default_cross_encoder_nodes(root, transformer)
    if model_type == "SparseEncoder":
        if not any(a.endswith("ForMaskedLM") for a in archs):
            raise LoadError("a SparseEncoder folder without modules.json must hold a masked-LM (…ForMaskedLM) "
                            "for SPLADE; other models need a trained sparse head stpipe does not have", path=str(f),
                            hint="save the SparseEncoder with its modules.json")
        return [{**transformer, "transformer_task": "fill-mask"}, {"type": "SpladePooling", "pooling_strategy": "max"}]
    feature, _ = describe_output(transformer, hf)
    if feature != "token_embeddings":
        return [transformer]
    causal = archs[0].endswith("ForCausalLM") and hf.get("is_causal", True) is not False
    return [transformer, {"type": "Pooling", "pooling_mode": "lasttoken" if causal else "mean"}]


# ============================================================================================== saving
def save(pipeline: Pipeline, path: str | os.PathLike, safe_serialization: bool = True, *,
         create_model_card: bool = True, overwrite: str = "model") -> None:
    """Write ``pipeline`` to ``path`` in sentence-transformers 6.2's layout.

    An existing directory is replaced only when it is exactly a saved model (``overwrite="force"``: also leftover
    model files); the replacement is atomic, and temporaries of earlier killed saves are cleaned up
    (:mod:`stpipe.formats.save_dir`). Write errors (disk full …) are a LoadError naming the target."""
    target = Path(path).expanduser().resolve()
    with files.replacing(target, save_dir.replace_check(overwrite)) as tmp:
        write_model_dir(pipeline, tmp, safe_serialization, create_model_card=create_model_card, shown_as=target)


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
    from stpipe.formats import cross_encoder as ce
    from stpipe.formats.module_io import NodeContext, saved_module_node

    root = locate(path)
    if Path(root, EXPORT_MANIFEST).is_file():  # a graph export (stpipe export … format=onnx|openvino)
        from stpipe.formats import exported

        return exported.to_definition(root, relative_to=relative_to)
    config, config_file = read_model_config(root)
    model_type = config.get("model_type", "CrossEncoder" if ce.is_legacy_cross_encoder(root) else
                            "SentenceTransformer")
    ctx = NodeContext(root=root, relative_to=relative_to, trust_remote_code=trust_remote_code,
                      allow_pickle=allow_pickle)
    entries = read_modules_json(root)
    if entries is None:
        nodes = default_nodes(root, model_type, saved_module_node("Transformer", "", ctx))
    else:
        nodes = [_entry_node(e, ctx) for e in entries]
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
    if model_type == "CrossEncoder":  # no similarity function; the activation of predict()
        definition.pop("similarity_fn_name")
        definition["activation_fn"] = ce.activation_from_files(root, config, config_file)
    definition["modules"] = nodes
    return literal(definition)


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
