"""What a save may replace: a directory that is exactly a model stpipe or sentence-transformers wrote.

* **Ownership** (:func:`foreign_entries`): a save replaces only a directory that is exactly a model stpipe or
  sentence-transformers wrote — every entry accounted for by its ``modules.json`` (module folders, the root
  module's files) and the known model files. ``overwrite="force"`` also replaces model files that are not so
  accounted for (a plain Hugging Face folder, a stale ``3_Dense``); an entry that is not a model file (``src/``,
  ``notes.txt``) is never deleted, not even with force: the save refuses and names it.

How the replacement itself is made safe at every instant (temporary next to the target, atomic exchange, recovery
after a kill) is :mod:`stpipe.files`; :func:`check_replaceable` is the ``check`` a model save passes to
:func:`stpipe.files.replacing`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import Path

from stpipe.contracts.pipeline import EXPORT_MANIFEST, MODULES_JSON, ROUTER_CONFIG
from stpipe.errors import LoadError
from stpipe.files import read_json

OVERWRITE_MODES = ("model", "force")
#: files a sentence-transformers / Hugging Face model directory holds (shell patterns, case-sensitive)
MODEL_FILE_PATTERNS = (
    "modules.json", "config_sentence_transformers.json", "README.md", "config.json", "generation_config.json",
    "sentence_*_config.json", "router_config.json", "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin",
    "tokenizer*.json", "tokenizer.model", "special_tokens_map.json", "added_tokens.json", "vocab.*", "merges.txt",
    "spiece.model", "sentencepiece.bpe.model", "*.tiktoken", "preprocessor_config.json", "processor_config.json",
    "video_preprocessor_config.json", "feature_extractor_config.json", "chat_template.json", "chat_template.jinja",
    "additional_chat_templates",
    # graph exports (stpipe.formats.exported): the manifest lists every entry the export wrote
    "stpipe_export.json", "*.onnx", "openvino_model*.xml", "openvino_model*.bin", "onnx", "openvino",
)


def replace_check(overwrite: str) -> Callable[[Path], None]:
    """The ``check`` for :func:`stpipe.files.replacing` of a model save under ``overwrite``."""
    return lambda target: check_replaceable(target, overwrite)


# --------------------------------------------------------------------------------------------- ownership
def is_model_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in MODEL_FILE_PATTERNS)


def owned_entries(target: Path) -> set[str]:
    """Names directly in ``target`` that its ``modules.json`` accounts for (empty without a readable one)."""
    if (target / EXPORT_MANIFEST).is_file():
        return _export_entries(target)
    try:
        entries = read_json(target / MODULES_JSON)
    except LoadError:
        return set()
    if not isinstance(entries, list):
        return set()
    owned = {MODULES_JSON, "config_sentence_transformers.json", "README.md"}
    for entry in entries:
        sub = entry.get("path", "") if isinstance(entry, dict) else None
        if not isinstance(sub, str):
            continue
        if sub:
            owned.add(Path(sub).parts[0])
        else:  # the root module's files: model files, and a root Router's module folders
            owned.update(n.name for n in target.iterdir() if is_model_file(n.name))
            owned.update(_router_folders(target))
    return owned


def _export_entries(target: Path) -> set[str]:
    """The entries a graph export's manifest lists (its ``files``), the manifest included."""
    try:
        files = read_json(target / EXPORT_MANIFEST).get("files")
    except (LoadError, AttributeError):
        return set()
    if not isinstance(files, list):
        return set()
    return {EXPORT_MANIFEST} | {Path(f).parts[0] for f in files if isinstance(f, str) and f and Path(f).parts}


def _router_folders(folder: Path) -> set[str]:
    f = folder / ROUTER_CONFIG
    try:
        types = read_json(f).get("types") if f.is_file() else None
    except (LoadError, AttributeError):
        return set()
    return {Path(k).parts[0] for k in types if isinstance(k, str) and k} if isinstance(types, dict) else set()


def foreign_entries(target: Path, overwrite: str = "model") -> list[str]:
    """Entries of ``target`` a save may not replace under ``overwrite`` (see the module docstring)."""
    if not target.is_dir():
        return []
    owned = owned_entries(target)
    names = sorted(p.name for p in target.iterdir())
    if overwrite == "force":
        return [n for n in names if n not in owned and not is_model_file(n) and not _is_module_folder(target / n)]
    return [n for n in names if n not in owned]


def _is_module_folder(path: Path) -> bool:
    """A folder named like a saved module (``1_Pooling``) that holds only model files."""
    head, _, cls = path.name.partition("_")
    return path.is_dir() and head.isdigit() and cls.isidentifier() and \
        all(is_model_file(p.name) or _is_module_folder(p) for p in path.iterdir())


def check_replaceable(target: Path, overwrite: str) -> None:
    """LoadError unless a save may write ``target`` (absent, empty, or a model under ``overwrite``)."""
    if overwrite not in OVERWRITE_MODES:
        raise LoadError(f"overwrite must be one of {', '.join(OVERWRITE_MODES)}, got {overwrite!r}")
    if target.exists() and not target.is_dir():
        raise LoadError("cannot save a model here: it is a file", path=str(target))
    foreign = foreign_entries(target, overwrite)
    if not foreign:
        return
    shown = ", ".join(foreign[:10]) + (f" … ({len(foreign)} in all)" if len(foreign) > 10 else "")
    if overwrite == "force":
        raise LoadError(f"refusing to replace this directory: it holds entries that are not model files: {shown}",
                        path=str(target), hint="saving never deletes files it does not own; move them away, or "
                                               "save into a new directory")
    raise LoadError(f"refusing to replace this directory: it is not exactly a saved model; entries not accounted "
                    f"for by its modules.json: {shown}", path=str(target),
                    hint="save into a new or empty directory; overwrite=force replaces leftover model files "
                         "(never other files)")
