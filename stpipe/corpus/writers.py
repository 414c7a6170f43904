"""Checkpointed output: each encoded chunk is a file of its own, committed in a manifest; the end joins them.

The chunks of ``out/e.npy`` live in ``out/.e.npy.partial/`` (``chunk-000003.npy`` … and ``manifest.json``). A
chunk is written to a temporary name and renamed, then the manifest — ``key`` (a hash of the model definition,
the encode settings, the input file's identity and the chunking), the chunks done with their sizes — is replaced
atomically; so after a crash (even SIGKILL) the manifest names only complete chunks. A rerun with the same key
continues after the last one; another key starts over (``resume=true`` refuses instead). When every chunk is
there, :func:`stpipe.corpus.merge.concat` joins them into a temporary file renamed to ``out/e.npy``, and the
partial directory is removed — only the files this module wrote in it, then the directory itself.

A chunk result is a dense ``numpy`` array ``(rows, dim)`` or, for a sparse model, a :class:`Sparse` (one
``(indices, values)`` pair per row). :func:`pack`/:func:`unpack` turn one into ``.npy`` bytes (no pickle) to
send between processes and Ray actors.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stpipe.errors import CommandError
from stpipe.files import atomic_file

MANIFEST = "manifest.json"


@dataclass
class Sparse:
    """The rows of a sparse embedding: ``offsets[i]:offsets[i+1]`` of ``indices``/``values`` are row i's."""

    indices: Any
    values: Any
    offsets: Any
    dim: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def rows(self) -> Any:
        for a, b in zip(self.offsets[:-1], self.offsets[1:]):
            yield self.indices[a:b], self.values[a:b]


def pack(result: Any) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    if isinstance(result, Sparse):
        np.savez(buf, indices=result.indices, values=result.values, offsets=result.offsets,
                 dim=np.array(result.dim))
    else:
        np.save(buf, result, allow_pickle=False)
    return buf.getvalue()


def unpack(data: bytes) -> Any:
    import numpy as np

    buf = io.BytesIO(data)
    if data[:2] == b"PK":
        z = np.load(buf, allow_pickle=False)
        return Sparse(z["indices"], z["values"], z["offsets"], int(z["dim"]))
    return np.load(buf, allow_pickle=False)


def _dense(result: Any) -> Any:
    import numpy as np

    if not isinstance(result, Sparse):
        return result
    out = np.zeros((len(result), result.dim), dtype=np.float32)
    for i, (idx, val) in enumerate(result.rows()):
        out[i, idx] = val
    return out


def _jsonl(result: Any, ids: list[Any] | None) -> bytes:
    lines = []
    if isinstance(result, Sparse):
        for i, (idx, val) in enumerate(result.rows()):
            rec = {"indices": idx.tolist(), "values": [float(v) for v in val]}
            lines.append(json.dumps({"id": ids[i], **rec} if ids is not None else rec))
    else:
        for i, row in enumerate(result):
            emb = [float(x) for x in row]
            lines.append(json.dumps({"id": ids[i], "embedding": emb} if ids is not None else emb))
    return ("\n".join(lines) + "\n").encode()


def _parquet(result: Any, ids: list[Any], path: Path) -> None:
    from stpipe.corpus.readers import pyarrow

    pa = pyarrow()
    import pyarrow.parquet as pq

    cols: dict[str, Any] = {"id": pa.array(ids)}
    if isinstance(result, Sparse):
        cols["indices"] = pa.ListArray.from_arrays(pa.array(result.offsets.astype("int32")), pa.array(result.indices))
        cols["values"] = pa.ListArray.from_arrays(pa.array(result.offsets.astype("int32")), pa.array(result.values))
    else:
        cols["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(result.reshape(-1)), result.shape[1])
    pq.write_table(pa.table(cols), path)


def write_chunk(result: Any, ids: list[Any], path: Path, with_ids: bool) -> None:
    """One chunk in the output's format (``path``'s suffix), through a temporary name."""
    import numpy as np

    with atomic_file(path) as tmp:
        if path.suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, _dense(result), allow_pickle=False)
        elif path.suffix == ".jsonl":
            tmp.write_bytes(_jsonl(result, ids if with_ids else None))
        else:
            _parquet(result, ids, tmp)


class Partial:
    """The partial output of ``target``: its chunks and manifest (see the module docstring)."""

    def __init__(self, target: Path, key: str, chunks: int, resume: bool):
        self.target, self.key, self.chunks = target, key, chunks
        self.dir = target.with_name(f".{target.name}.partial")
        self.done: list[dict[str, Any]] = []
        self.resumed = 0
        try:
            self._open(resume)
        except OSError as exc:
            raise CommandError(f"output '{target}': cannot write its chunks in {self.dir}: "
                               f"{exc.strerror or exc}") from None

    def _open(self, resume: bool) -> None:
        manifest = self.dir / MANIFEST
        if self.dir.exists() and not manifest.is_file():
            raise CommandError(f"'{self.dir}' exists but holds no {MANIFEST}; it is not stpipe's partial output of "
                               f"'{self.target}': move it away")
        old = json.loads(manifest.read_text()) if manifest.is_file() else None
        if old is not None and old.get("key") == self.key:
            for entry in old["done"]:  # keep the complete prefix whose files are all there
                f = self.dir / entry["file"]
                if not f.is_file() or f.stat().st_size != entry["bytes"]:
                    break
                self.done.append(entry)
            self.resumed = len(self.done)
        elif old is not None:
            if resume:
                raise CommandError(f"resume=true: the partial output in '{self.dir}' was made by another command "
                                   "(a different model, settings or input); rerun without resume=true to start over")
            self._remove(old)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._commit()

    def chunk_path(self, k: int) -> Path:
        return self.dir / f"chunk-{k:06d}{self.target.suffix}"

    def add(self, k: int, result: Any, ids: list[Any], with_ids: bool) -> None:
        if k != len(self.done):
            raise RuntimeError(f"chunk {k} committed out of order (next is {len(self.done)})")
        path = self.chunk_path(k)
        try:
            write_chunk(result, ids, path, with_ids)
        except OSError as exc:
            raise CommandError(f"output '{self.target}': cannot write chunk {k}: {exc.strerror or exc}") from None
        self.done.append({"chunk": k, "file": path.name, "rows": len(result), "bytes": path.stat().st_size})
        self._commit()

    def _commit(self) -> None:
        manifest = {"key": self.key, "target": self.target.name, "chunks": self.chunks, "done": self.done}
        with atomic_file(self.dir / MANIFEST) as tmp:
            tmp.write_text(json.dumps(manifest, indent=1))

    def finish(self) -> int:
        """Join the chunks into the target (atomically) and remove the partial directory; the rows."""
        from stpipe.corpus.merge import concat

        rows = concat([self.dir / e["file"] for e in self.done], self.target)
        self._remove({"done": self.done})
        return rows

    def discard(self) -> None:
        """Remove the partial output (a run that failed before its first chunk: nothing to resume)."""
        self._remove({"done": self.done})

    def _remove(self, manifest: dict[str, Any]) -> None:
        """Delete what this module wrote in the partial directory (never other files), then the directory."""
        names = {e["file"] for e in manifest.get("done", [])} | {MANIFEST, MANIFEST + ".tmp"}
        names |= {p.name for p in [*self.dir.glob("chunk-*"), *self.dir.glob(".chunk-*.tmp")]}
        for name in names:
            (self.dir / name).unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:
            pass  # someone else's file is in there: it stays
