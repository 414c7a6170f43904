"""Saving a model directory safely: what a save may replace, and a replacement that is safe at every instant.

* **Ownership** (:func:`foreign_entries`): a save replaces only a directory that is exactly a model stpipe or
  sentence-transformers wrote — every entry accounted for by its ``modules.json`` (module folders, the root
  module's files) and the known model files. ``overwrite="force"`` also replaces model files that are not so
  accounted for (a plain Hugging Face folder, a stale ``3_Dense``); an entry that is not a model file (``src/``,
  ``notes.txt``) is never deleted, not even with force: the save refuses and names it.
* **Replacement** (:func:`swap_in`): the model is written to ``.NAME.tmp-PID-RAND`` next to the target, then
  exchanged with the target in one atomic ``renameat2(RENAME_EXCHANGE)`` (Linux); where the OS cannot, the
  target is renamed to ``.NAME.old-PID-RAND`` and the new one renamed into place, and :func:`recover` (run by the
  next save and load) puts the old model back if a kill fell between the two renames.
* **Leftovers** (:func:`clean_stale`): temporaries of a save whose process is gone are removed by the next save.

:func:`replacing` puts the three together for a writer of a whole directory (ST format, graph exports);
:func:`atomic_file` is the same promise for one file (embeddings, predictions, a corpus run's chunks).

Every filesystem operation of a save goes through :data:`fs`, so tests can kill a save after any step.
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import logging
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stpipe.errors import LoadError

logger = logging.getLogger("stpipe")

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
#: the manifest of a graph export (stpipe.formats.exported.MANIFEST); its "files" are owned like modules.json's
EXPORT_MANIFEST = "stpipe_export.json"


class _FS:
    """The save's filesystem operations, one seam: :attr:`hook` (if set) is called with each step's name first."""

    hook: Any = None

    def step(self, name: str) -> None:
        if self.hook is not None:
            self.hook(name)

    def mkdir(self, path: Path) -> None:
        self.step("mkdir")
        path.mkdir(mode=_dir_mode())

    def rename(self, src: Path, dst: Path) -> None:
        self.step("rename")
        os.rename(src, dst)

    def exchange(self, a: Path, b: Path) -> bool:
        """Swap two directories atomically; False where the OS or filesystem cannot."""
        self.step("exchange")
        return _renameat2_exchange(a, b)

    def rmtree(self, path: Path) -> None:
        self.step("rmtree")
        shutil.rmtree(path, ignore_errors=True)


fs = _FS()
_exchange_supported = sys.platform.startswith("linux")


def _renameat2_exchange(a: Path, b: Path) -> bool:
    global _exchange_supported
    if not _exchange_supported:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        _exchange_supported = False
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _dir_mode() -> int:
    """The mode a plain ``mkdir`` gives under the current umask (``tempfile.mkdtemp`` would give 0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


# --------------------------------------------------------------------------------------------- ownership
def is_model_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in MODEL_FILE_PATTERNS)


def owned_entries(target: Path) -> set[str]:
    """Names directly in ``target`` that its ``modules.json`` accounts for (empty without a readable one)."""
    from stpipe.modules.module import read_json

    if (target / EXPORT_MANIFEST).is_file():
        return _export_entries(target)
    try:
        entries = read_json(target / "modules.json")
    except LoadError:
        return set()
    if not isinstance(entries, list):
        return set()
    owned = {"modules.json", "config_sentence_transformers.json", "README.md"}
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
    from stpipe.modules.module import read_json

    try:
        files = read_json(target / EXPORT_MANIFEST).get("files")
    except (LoadError, AttributeError):
        return set()
    if not isinstance(files, list):
        return set()
    return {EXPORT_MANIFEST} | {Path(f).parts[0] for f in files if isinstance(f, str) and f and Path(f).parts}


def _router_folders(folder: Path) -> set[str]:
    from stpipe.modules.module import read_json

    f = folder / "router_config.json"
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


# --------------------------------------------------------------------------------------------- replacement
@contextmanager
def replacing(target: Path, overwrite: str = "model", what: str = "model") -> Iterator[Path]:
    """A new temporary directory for the complete ``target``: the caller writes into it; when the block ends
    without error it is swapped in (:func:`swap_in`), otherwise removed. Before anything is written, leftovers of
    killed saves are cleaned and ``target`` must be replaceable (:func:`check_replaceable`). OS errors (disk
    full …) become a LoadError naming the target ("cannot write the {what}")."""
    clean_stale(target)
    check_replaceable(target, overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LoadError(f"cannot create the directory: {exc.strerror or exc}", path=str(target.parent)) from None
    tmp = new_temp_dir(target)
    try:
        yield tmp
        swap_in(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise LoadError(f"cannot write the {what}: {exc.strerror or exc}", path=str(target)) from None
        raise


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """A temporary path next to ``target`` (``.NAME.PID.tmp``) to write the whole file to: renamed onto ``target``
    when the block ends without error, removed in every case, so ``target`` is always the old or the new file."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def new_temp_dir(target: Path, kind: str = "tmp") -> Path:
    """A fresh ``.NAME.KIND-PID-RAND`` directory next to ``target``, with the usual permissions."""
    path = target.parent / f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    fs.mkdir(path)
    return path


def swap_in(tmp: Path, target: Path) -> None:
    """Put the finished directory ``tmp`` at ``target``; at every instant ``target`` (or, after a kill between
    the two renames of the fallback, its recoverable ``.old`` copy) is a complete model."""
    if not target.exists():
        fs.rename(tmp, target)
        return
    if fs.exchange(tmp, target):
        fs.rmtree(tmp)  # now the old model
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    fs.rename(target, old)
    try:
        fs.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    fs.rmtree(old)


def _leftovers(target: Path, kind: str) -> list[tuple[Path, int | None]]:
    """Our temporaries next to ``target`` and the pid that made them: ``.NAME.KIND-PID-RAND``, or the pid-less
    ``.NAME.KIND-XXXXXXXX`` of earlier stpipe versions (mkdtemp / uuid suffixes)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.{kind}-(?:(\d+)-[0-9a-f]{{8}}|[a-z0-9_]{{8}})")
    out = []
    if not target.parent.is_dir():
        return out
    for p in target.parent.iterdir():
        match = pattern.fullmatch(p.name)
        if match and p.is_dir() and not p.is_symlink():
            out.append((p, int(match.group(1)) if match.group(1) else None))
    return sorted(out)


def _alive(pid: int | None) -> bool:
    if pid is None or pid == os.getpid():
        return pid is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(target: str | os.PathLike) -> None:
    """A save killed between its two renames left no model at ``target`` but a ``.old`` copy: put it back."""
    target = Path(target)
    if target.exists():
        return
    for old, pid in _leftovers(target, "old"):
        if not _alive(pid) and ((old / "modules.json").is_file() or (old / EXPORT_MANIFEST).is_file()):
            os.rename(old, target)
            logger.warning("%s: restored the model an interrupted save had moved aside", target)
            return


def clean_stale(target: Path) -> None:
    """Remove the temporaries (``.NAME.tmp-*``, ``.NAME.old-*``) of earlier saves whose process is gone."""
    recover(target)
    for kind in ("tmp", "old"):
        for path, pid in _leftovers(target, kind):
            if not _alive(pid):
                fs.rmtree(path)
