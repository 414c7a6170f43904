"""Checkpointed output: each encoded chunk is a file of its own, committed in a manifest; the end joins them.

The chunks of ``out/e.npy`` live in ``out/.e.npy.partial/`` (``chunk-000003.npy`` … and ``manifest.json``). A
chunk is written to a temporary name and renamed, then the manifest — ``key`` (a hash of the model definition,
the encode settings, the inputs' fingerprint and the chunking), the chunks done with their rows, sizes and
SHA-256 — is replaced atomically; so after a crash (even SIGKILL) the manifest names only complete chunks. A rerun
with the same key continues after the last one; another key starts over (``resume=true`` refuses instead). When
every chunk is there, :func:`stpipe.corpus.merge.concat` joins them into a temporary file renamed to
``out/e.npy``, and the partial directory is removed — only the files this module names, then the directory.

**The partial folder is untrusted** (it may have been edited, truncated or planted): the manifest is read only as
a regular file (no link followed, at most :data:`MAX_MANIFEST` bytes, every field checked) and a chunk is used
only when its name is the one this module generates for its index (``chunk-%06d.EXT``, inside the folder), it is a
regular file (not a link) and its size and SHA-256 are the manifest's. A manifest that fails these checks is
discarded with a warning; chunks after the first one that fails are encoded again. Deleting never follows the
manifest either: only entries of the folder itself whose names this module generates (chunks, the manifest, their
temporaries) are removed — a link is removed as a link, its target untouched — and never a directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from pathlib import Path
from typing import Any

from stpipe.corpus.writers import write_chunk
from stpipe.errors import CommandError
from stpipe.files import atomic_write, read_regular

logger = logging.getLogger("stpipe")

MANIFEST = "manifest.json"
VERSION = 1
MAX_MANIFEST = 64 << 20
_OWNED = re.compile(r"(chunk-\d{6}\.(npy|jsonl|parquet)|manifest\.json)"
                    r"|\.(chunk-\d{6}\.(npy|jsonl|parquet)|manifest\.json)\.(tmp-\d+-[0-9a-f]{16}|\d+\.tmp)")
_HEX = re.compile(r"[0-9a-f]{64}")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _is_regular(path: Path) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


class Partial:
    """The partial output of ``target``: its chunks and manifest (see the module docstring)."""

    def __init__(self, target: Path, key: str, chunks: int, resume: bool, log: Any = None):
        self.target, self.key, self.chunks = target, key, chunks
        self.dir = target.with_name(f".{target.name}.partial")
        self.done: list[dict[str, Any]] = []
        self.resumed = 0
        self.log = log or (lambda msg: logger.warning("%s", msg))
        try:
            self._open(resume)
        except OSError as exc:
            raise CommandError(f"output '{target}': cannot write its chunks in {self.dir}: "
                               f"{exc.strerror or exc}") from None

    # ---------------------------------------------------------------------------------------------- reading
    def _open(self, resume: bool) -> None:
        try:
            st = os.lstat(self.dir)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise CommandError(f"'{self.dir}' is not a directory stpipe made (a link or a file); stpipe never "
                               f"follows or removes it: move it away to encode '{self.target}'")
        if st is not None:
            old, problem = self._load()
            if old is None and problem is None and self._foreign():
                raise CommandError(f"'{self.dir}' exists but holds no {MANIFEST}; it is not stpipe's partial output "
                                   f"of '{self.target}': move it away")
            if problem is not None:
                self.log(f"discarding the partial output in {self.dir}: {problem}; starting over")
            elif old is not None and old["key"] != self.key:
                if resume:
                    raise CommandError(f"resume=true: the partial output in '{self.dir}' was made by another command "
                                       "(a different model, settings or input); rerun without resume=true to start "
                                       "over")
                self.log(f"the partial output in {self.dir} was made by another command or from other inputs (the "
                         "model, the settings or the inputs' content differ): starting over")
            elif old is not None:
                self._verify(old["done"])
            if not self.done:
                self._remove()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._commit()

    def _load(self) -> tuple[dict[str, Any] | None, str | None]:
        """The manifest, or the reason it cannot be trusted (None, None: there is none)."""
        path = self.dir / MANIFEST
        if not os.path.lexists(path):
            return None, None
        data = read_regular(path, MAX_MANIFEST)
        if data is None:
            return None, f"{MANIFEST} is not a regular file of at most {MAX_MANIFEST} bytes"
        try:
            m = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None, f"{MANIFEST} is not valid JSON (truncated?)"
        ok = isinstance(m, dict) and m.get("stpipe_partial") == VERSION and isinstance(m.get("key"), str) and \
            isinstance(m.get("done"), list) and all(isinstance(e, dict) for e in m["done"])
        return (m, None) if ok else (None, f"{MANIFEST} is not a manifest stpipe {VERSION} wrote")

    def _verify(self, entries: list[dict[str, Any]]) -> None:
        """Keep the prefix of ``entries`` whose chunks are all there, exactly as the manifest records them."""
        for k, e in enumerate(entries):
            problem = self._check_entry(k, e)
            if problem is not None:
                self.log(f"{self.dir}: chunk {k} cannot be used ({problem}); encoding it and the chunks after it again")
                break
            self.done.append({key: e[key] for key in ("chunk", "file", "rows", "bytes", "sha256")})
        self.resumed = len(self.done)
        if self.resumed > self.chunks:
            self.done, self.resumed = self.done[:self.chunks], self.chunks
        for name in self._owned():  # chunks past the kept prefix, temporaries
            if name != MANIFEST and name not in {e["file"] for e in self.done}:
                (self.dir / name).unlink(missing_ok=True)

    def _check_entry(self, k: int, e: dict[str, Any]) -> str | None:
        name = self.chunk_path(k).name
        if e.get("chunk") != k or e.get("file") != name:
            return f"the manifest names {e.get('file')!r} for it, not {name!r}"
        if not all(isinstance(e.get(x), int) and not isinstance(e.get(x), bool) and e[x] >= 0
                   for x in ("rows", "bytes")) or not _HEX.fullmatch(str(e.get("sha256"))):
            return "its manifest entry is malformed"
        st = _is_regular(self.dir / name)
        if st is None:
            return "missing, or not a regular file"
        if st.st_size != e["bytes"]:
            return f"{st.st_size} bytes, the manifest says {e['bytes']}"
        if file_sha256(self.dir / name) != e["sha256"]:
            return "its content differs from what was written"
        return None

    def _owned(self) -> list[str]:
        """Names in the folder this module generates (files or links, never directories)."""
        try:
            entries = list(os.scandir(self.dir))
        except OSError:
            return []
        return [e.name for e in entries if _OWNED.fullmatch(e.name) and not e.is_dir(follow_symlinks=False)]

    def _foreign(self) -> list[str]:
        owned = set(self._owned())
        return [p.name for p in self.dir.iterdir() if p.name not in owned]

    # ---------------------------------------------------------------------------------------------- writing
    def chunk_path(self, k: int) -> Path:
        return self.dir / f"chunk-{k:06d}{self.target.suffix}"

    def add(self, k: int, result: Any, ids: list[Any], with_ids: bool) -> None:
        if k != len(self.done):
            raise RuntimeError(f"chunk {k} committed out of order (next is {len(self.done)})")
        path = self.chunk_path(k)
        try:
            write_chunk(result, ids, path, with_ids)
            entry = {"chunk": k, "file": path.name, "rows": len(result), "bytes": path.stat().st_size,
                     "sha256": file_sha256(path)}
        except OSError as exc:
            raise CommandError(f"output '{self.target}': cannot write chunk {k}: {exc.strerror or exc}") from None
        self.done.append(entry)
        self._commit()

    def _commit(self) -> None:
        manifest = {"stpipe_partial": VERSION, "key": self.key, "target": self.target.name, "chunks": self.chunks,
                    "done": self.done}
        with atomic_write(self.dir / MANIFEST, "w", "utf-8") as fh:
            fh.write(json.dumps(manifest, indent=1))

    def finish(self) -> int:
        """Join the chunks into the target (atomically) and remove the partial directory; the rows."""
        from stpipe.corpus.merge import concat

        rows = concat([self.dir / e["file"] for e in self.done], self.target)
        self._remove()
        return rows

    def discard(self) -> None:
        """Remove the partial output (nothing to resume, or inputs that changed under the run)."""
        self.done = []
        self._remove()

    def _remove(self) -> None:
        """Delete the entries this module names in the partial directory (never others), then the directory."""
        for name in self._owned():
            (self.dir / name).unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:
            pass  # someone else's file is in there: it stays
