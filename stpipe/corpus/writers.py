"""The files of ``stpipe encode``'s outputs: one chunk in ``.npy``, ``.jsonl`` or Parquet (:func:`write_chunk`).

The partial output that a rerun resumes is :mod:`stpipe.corpus.partial`'s. A chunk result is a dense ``numpy``
array ``(rows, dim)`` or, for a sparse model, a :class:`Sparse` (one ``(indices, values)`` pair per row).
:func:`pack`/:func:`unpack` turn one into ``.npy`` bytes (no pickle) to send between processes and Ray actors.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stpipe.errors import CommandError
from stpipe.files import atomic_write


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


def _parquet(result: Any, ids: list[Any], name: str, fh: Any) -> None:
    from stpipe.corpus.readers import pyarrow

    pa = pyarrow()
    import pyarrow.parquet as pq

    try:
        cols: dict[str, Any] = {"id": pa.array(ids)}
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        raise CommandError(f"output '{name}': the ids cannot be one Parquet column ({exc}); give ids of one "
                           "type (strings, or integers) in inputs.id_column") from None
    if isinstance(result, Sparse):
        cols["indices"] = pa.ListArray.from_arrays(pa.array(result.offsets.astype("int32")), pa.array(result.indices))
        cols["values"] = pa.ListArray.from_arrays(pa.array(result.offsets.astype("int32")), pa.array(result.values))
    else:
        cols["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(result.reshape(-1)), result.shape[1])
    pq.write_table(pa.table(cols), fh)


def write_chunk(result: Any, ids: list[Any], path: Path, with_ids: bool) -> None:
    """One chunk in the output's format (``path``'s suffix), through a temporary name."""
    import numpy as np

    with atomic_write(path) as fh:
        if path.suffix == ".npy":
            np.save(fh, _dense(result), allow_pickle=False)
        elif path.suffix == ".jsonl":
            fh.write(_jsonl(result, ids if with_ids else None))
        else:
            _parquet(result, ids, path.name, fh)
