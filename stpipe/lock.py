"""One writer per output: :class:`OutputLock` — ``.NAME.lock`` next to the output, created exclusively.

The lock file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (a planted link is never followed, and only one
process can create it) and holds ``{"pid", "host", "started"}`` of its holder. While it is held, a second writer of
the same output is refused with a message naming the holder. A lock whose holder is a process of this host that no
longer runs (killed, crashed) is stale: the next writer takes it over and says so. A lock of another host is never
taken over (its process cannot be checked from here): the message says which host holds it and how to remove it.
The holder removes its lock when it is done — only if the file is still its own.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "e.npy"
>>> with OutputLock(out):
...     sorted(p.name for p in out.parent.iterdir())
['.e.npy.lock']
>>> sorted(p.name for p in out.parent.iterdir())
[]
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from stpipe.errors import CommandError

logger = logging.getLogger("stpipe")
MAX_LOCK_BYTES = 4096


def lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.lock")


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def _read(path: Path) -> dict[str, Any] | None:
    """The holder recorded in a lock file; None when it cannot be read as one (a link, garbage, gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        data = os.read(fd, MAX_LOCK_BYTES)
    finally:
        os.close(fd)
    try:
        holder = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(holder, dict) or not isinstance(holder.get("pid"), int) or not isinstance(holder.get("host"),
                                                                                                 str):
        return None
    return holder


class OutputLock:
    """Hold ``.NAME.lock`` next to ``target`` for the duration of a ``with`` block (see the module docstring)."""

    def __init__(self, target: Path, what: str = "output", log: Any = None):
        self.target, self.path, self.what = Path(target), lock_path(Path(target)), what
        self.log = log or (lambda msg: logger.warning("%s", msg))
        self.token = uuid.uuid4().hex
        self.held = False

    def _create(self) -> bool:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                       "token": self.token}, fh)
        self.held = True
        return True

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._create():
                return
            holder = _read(self.path)
            if self.path.is_symlink() or (holder is None and self.path.exists()):
                raise CommandError(f"{self.what} '{self.target}': '{self.path}' is not a lock stpipe wrote (a link or "
                                   "another file); stpipe does not follow or remove it: move it away")
            if holder is not None and (holder["host"] != socket.gethostname() or pid_alive(holder["pid"])):
                raise CommandError(
                    f"{self.what} '{self.target}' is being written by another run (process {holder['pid']} on "
                    f"{holder['host']}, lock {self.path}); wait for it to finish, or write another output. If "
                    "that process is gone (another machine's), delete the lock file")
            self._take_over(holder)
        except OSError as exc:
            raise CommandError(f"{self.what} '{self.target}': cannot create its lock {self.path}: "
                               f"{exc.strerror or exc}") from None

    def _take_over(self, stale: dict[str, Any] | None) -> None:
        """Replace the lock of a dead process: move it aside under a fresh name, check it is still that one."""
        aside = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex[:12]}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            pass  # its holder (or another taker) removed it meanwhile
        else:
            moved = _read(aside)
            if moved is not None and stale is not None and moved.get("token") != stale.get("token"):
                try:  # another run took the lock over in between: give it back
                    os.link(aside, self.path)
                finally:
                    os.unlink(aside)
                raise CommandError(f"{self.what} '{self.target}' is being written by another run (lock "
                                   f"{self.path}); wait for it to finish")
            os.unlink(aside)
            if stale is not None:
                self.log(f"{self.what} '{self.target}': took over the lock of process {stale['pid']}, which no "
                         "longer runs (an earlier run was killed)")
        if not self._create():
            raise CommandError(f"{self.what} '{self.target}' is being written by another run (lock {self.path}); "
                               "wait for it to finish")

    def release(self) -> None:
        if self.held and (_read(self.path) or {}).get("token") == self.token:
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
