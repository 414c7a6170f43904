"""The one home for file safety, torch-free (DESIGN.md): every writer and reader of model files uses it.

* :func:`atomic_write` / :func:`atomic_file` — one file written whole: the target is always the old or the new
  file; the temporary is created exclusively (``O_EXCL``, ``O_NOFOLLOW``) under an unpredictable name next to it,
  so a planted link is never written through, and leftovers of killed writes are removed by the next write.
* :func:`replacing` — a whole directory (a saved model, a graph export) written into a temporary next to the
  target and swapped in atomically: ``renameat2(RENAME_EXCHANGE)`` on Linux; elsewhere the target is renamed to
  ``.NAME.old-PID-RAND`` and the new one renamed into place, and :func:`recover` (run by the next save and load)
  puts the old model back if a kill fell between the two renames. Temporaries of a save whose process is gone are
  removed by the next save (:func:`clean_stale`). What a save may replace is the caller's ``check``
  (:func:`stpipe.formats.save_dir.check_replaceable` for models).
* :func:`read_json` — JSON read back from disk, every failure a :class:`~stpipe.errors.LoadError` naming the file;
  :func:`read_regular` — a file read back only if it is a regular file (no link followed) of bounded size.
* :func:`check_relative` — a path read from a saved file stays inside its folder.
* :func:`load_dir_path` / :func:`load_file_path` — a folder (or file) of a local model or a cached hub model.

Every filesystem operation of a directory save goes through :data:`fs`, so tests can kill a save after any step.

>>> check_relative("1_Pooling")
>>> check_relative("../etc")  # doctest: +ELLIPSIS
Traceback (most recent call last):
stpipe.errors.LoadError: unsafe module path '../etc': module paths must be relative and stay inside the model ...
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import re
import secrets
import shutil
import stat
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stpipe.contracts.pipeline import EXPORT_MANIFEST, MODULES_JSON
from stpipe.errors import LoadError
from stpipe.resources import local_model, looks_like_hub_id

logger = logging.getLogger("stpipe")


# --------------------------------------------------------------------------------------------- reading
def check_relative(subpath: str) -> None:
    """Refuse a saved module path that could escape the model directory."""
    if not subpath:
        return
    p = Path(subpath)
    if "\x00" in subpath or p.is_absolute() or p.anchor or ".." in p.parts or subpath.startswith(("/", "\\")):
        raise LoadError(f"unsafe module path '{subpath}': module paths must be relative and stay inside the "
                        "model directory", hint="fix modules.json / router_config.json")


def read_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise LoadError(f"malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
                        path=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise LoadError(f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); JSON files "
                        "must be UTF-8", path=str(path), hint="re-save the file as UTF-8") from exc
    except RecursionError as exc:
        raise LoadError("JSON nested too deeply", path=str(path)) from exc
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror}", path=str(path)) from exc



def read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a link, not a FIFO) of at most ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        return fh.read(limit + 1) if stat.S_ISREG(st.st_mode) and st.st_size <= limit else None


def _hub_root(model_name_or_path: str, **hub: Any) -> str | None:
    """The local snapshot of a hub id (cached, or downloaded in one attempt when online); None for a local or
    absolute directory (the file is simply absent there); a :class:`LoadError` naming where stpipe looked
    otherwise."""
    if Path(model_name_or_path).is_dir() or Path(model_name_or_path).is_absolute():
        return None
    if not looks_like_hub_id(str(model_name_or_path)):
        raise LoadError("model directory not found", path=str(model_name_or_path),
                        hint="check the path: a local model directory, or a Hugging Face model id (org/name)")
    return local_model(str(model_name_or_path), **hub)


def load_file_path(model_name_or_path: str, filename: str, subfolder: str = "", token: bool | str | None = None,
                   cache_folder: str | None = None, revision: str | None = None,
                   local_files_only: bool = False) -> str | None:
    """Path of ``filename`` inside the checkpoint, or None if absent. A hub id is looked up with
    :func:`stpipe.resources.local_model`: its Hugging Face cache snapshot, else (online) one download of it."""
    check_relative(subfolder)
    local = Path(model_name_or_path, subfolder, filename)
    if local.exists():
        return str(local)
    root = _hub_root(model_name_or_path, token=token, cache_folder=cache_folder, revision=revision,
                     local_files_only=local_files_only)
    found = Path(root, subfolder, filename) if root is not None else None
    return str(found) if found is not None and found.is_file() else None


def load_dir_path(model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
                  cache_folder: str | None = None, revision: str | None = None,
                  local_files_only: bool = False) -> str | None:
    """Local directory holding the checkpoint's ``subfolder`` (a hub id: see :func:`load_file_path`)."""
    check_relative(subfolder)
    local = Path(model_name_or_path, subfolder)
    if local.is_dir():
        return str(local)
    root = _hub_root(model_name_or_path, token=token, cache_folder=cache_folder, revision=revision,
                     local_files_only=local_files_only)
    out = Path(root, subfolder) if root is not None else None
    return str(out) if out is not None and out.is_dir() else None


# --------------------------------------------------------------------------------------------- writing
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


@contextmanager
def replacing(target: Path, check: Callable[[Path], None] | None = None, what: str = "model") -> Iterator[Path]:
    """A new temporary directory for the complete ``target``: the caller writes into it; when the block ends
    without error it is swapped in (:func:`swap_in`), otherwise removed. Before anything is written, leftovers of
    killed saves are cleaned and ``check(target)`` may refuse (a LoadError). OS errors (disk full …) become a
    LoadError naming the target ("cannot write the {what}")."""
    clean_stale(target)
    if check is not None:
        check(target)
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


_TEMP = "{name}.tmp-{pid}-{rand}"


def _temp_file(target: Path) -> tuple[Path, int]:
    """A new, empty temporary file next to ``target``, created exclusively (``O_EXCL``, ``O_NOFOLLOW``) under an
    unpredictable name ``.NAME.tmp-PID-RAND``: a file or link planted there is never opened or written through."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    tmp = target.with_name("." + _TEMP.format(name=target.name, pid=os.getpid(), rand=secrets.token_hex(8)))
    return tmp, os.open(tmp, flags, 0o666)


def clean_stale_files(target: Path) -> None:
    """Remove the temporary files of earlier writes of ``target`` whose process is gone (regular files only)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.tmp-(\d+)-[0-9a-f]{{16}}")
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return
    for e in entries:
        m = pattern.fullmatch(e.name)
        if m and e.is_file(follow_symlinks=False) and not _alive(int(m.group(1))):
            Path(e.path).unlink(missing_ok=True)


@contextmanager
def atomic_write(target: Path, mode: str = "wb", encoding: str | None = None) -> Iterator[Any]:
    """An open file (``mode`` "wb" or "w") to write the whole of ``target`` to: a temporary created exclusively
    next to it (:func:`_temp_file`) and renamed onto ``target`` when the block ends without error, removed in every
    case — so ``target`` is always the old or the new file, and nothing is written through a planted link.
    Leftovers of killed writes of ``target`` are removed first (:func:`clean_stale_files`)."""
    clean_stale_files(target)
    tmp, fd = _temp_file(target)
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline="" if "b" not in mode else None) as fh:
            yield fh
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Like :func:`atomic_write`, for a writer that needs a path (``pq.write_table``): the temporary is created
    exclusively, and renamed onto ``target`` only if it is still the file created (not replaced by a link)."""
    clean_stale_files(target)
    tmp, fd = _temp_file(target)
    try:
        yield tmp
        made, now = os.fstat(fd), os.lstat(tmp)
        if (made.st_dev, made.st_ino) != (now.st_dev, now.st_ino):
            raise OSError(errno.EEXIST, "the temporary file was replaced while it was written", str(tmp))
        os.replace(tmp, target)
    finally:
        os.close(fd)
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
        if not _alive(pid) and ((old / MODULES_JSON).is_file() or (old / EXPORT_MANIFEST).is_file()):
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
