"""Joining embedding files in order — the chunks of one run, or the shards of ``shard.count=N`` runs.

:func:`concat` streams ``.npy`` (one header for the whole array, then each part's raw rows), ``.jsonl`` (the
bytes) and Parquet (each part's row groups) into a temporary file next to the target and renames it into place;
memory is one block of bytes or one row group, whatever the total. :func:`merge_dir` finds the shard files
``NAME.shard-00001-of-00003.npy`` under a directory (a sweep's job directories included), checks that every one
of the N shards is there exactly once, and joins them in shard order into ``NAME.npy`` (``stpipe merge DIR``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stpipe.errors import CommandError
from stpipe.files import atomic_file

SHARD = re.compile(r"^(?P<stem>.+)\.shard-(?P<index>\d{5})-of-(?P<count>\d{5})(?P<suffix>\.npy|\.jsonl|\.parquet)$")
BLOCK = 1 << 22


def shard_name(output: str, index: int, count: int) -> str:
    """``e.npy`` → ``e.shard-00001-of-00003.npy`` (unchanged for ``count`` 1)."""
    if count <= 1:
        return output
    p = Path(output)
    return str(p.with_name(f"{p.stem}.shard-{index:05d}-of-{count:05d}{p.suffix}"))


def npy_header(path: Path) -> tuple[tuple[int, ...], Any, int]:
    import numpy as np

    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(fh)
        except ValueError as exc:
            raise CommandError(f"{path}: not a .npy file ({exc})") from None
        if fortran:
            raise CommandError(f"{path}: a Fortran-ordered array; stpipe writes C order")
        return shape, dtype, fh.tell()


def _concat_npy(parts: Sequence[Path], fh: Any) -> int:
    import numpy as np

    heads = [npy_header(p) for p in parts]
    shape0, dtype0 = heads[0][0], heads[0][1]
    for p, (shape, dtype, _) in zip(parts, heads):
        if shape[1:] != shape0[1:] or dtype != dtype0:
            raise CommandError(f"{p}: shape {shape} / {dtype} does not match {parts[0]} ({shape0} / {dtype0})")
    rows = sum(h[0][0] for h in heads)
    np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(dtype0),
                                             "fortran_order": False, "shape": (rows, *shape0[1:])})
    for p, (_, _, offset) in zip(parts, heads):
        with open(p, "rb") as src:
            src.seek(offset)
            shutil.copyfileobj(src, fh, BLOCK)
    return rows


def _concat_jsonl(parts: Sequence[Path], fh: Any) -> int:
    rows = 0
    for p in parts:
        with open(p, "rb") as src:
            while block := src.read(BLOCK):
                rows += block.count(b"\n")
                fh.write(block)
    return rows


def _concat_parquet(parts: Sequence[Path], fh: Any) -> int:
    from stpipe.corpus.readers import pyarrow

    pyarrow()
    import pyarrow.parquet as pq

    files = [pq.ParquetFile(p) for p in parts]
    schema = files[0].schema_arrow
    rows = 0
    with pq.ParquetWriter(fh, schema) as writer:
        for p, f in zip(parts, files):
            if not f.schema_arrow.equals(schema):
                raise CommandError(f"{p}: its columns {f.schema_arrow} differ from {parts[0]}'s")
            for g in range(f.num_row_groups):
                table = f.read_row_group(g)
                rows += table.num_rows
                writer.write_table(table)
    return rows


def concat(parts: Sequence[Path], target: Path) -> int:
    """Join ``parts`` (all of ``target``'s format) into ``target`` atomically; the number of rows."""
    join = {".npy": _concat_npy, ".jsonl": _concat_jsonl, ".parquet": _concat_parquet}[target.suffix]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(target) as tmp, open(tmp, "wb") as fh:
            rows = join(parts, fh)
    except OSError as exc:
        raise CommandError(f"output '{target}': cannot write it: {exc.strerror or exc}") from None
    return rows


def find_shards(directory: Path) -> dict[tuple[str, str, int], dict[int, Path]]:
    """``(stem, suffix, count) → {index: file}`` of the shard files under ``directory``."""
    found: dict[tuple[str, str, int], dict[int, Path]] = {}
    for p in sorted(directory.rglob("*.shard-*")):
        m = SHARD.match(p.name)
        if not m or not p.is_file():
            continue
        group = found.setdefault((m["stem"], m["suffix"], int(m["count"])), {})
        index = int(m["index"])
        if index in group:
            raise CommandError(f"shard {index} of '{m['stem']}{m['suffix']}' is there twice: {group[index]} and "
                               f"{p}; remove one")
        group[index] = p
    return found


def merge_dir(directory: str | os.PathLike, out: str | None = None) -> list[tuple[Path, int]]:
    """Merge every complete set of shards under ``directory``; ``(written file, rows)`` for each set."""
    root = Path(directory)
    if not root.is_dir():
        raise CommandError(f"'{directory}' is not a directory (stpipe merge DIR: the directory of the shards)")
    groups = find_shards(root)
    if not groups:
        raise CommandError(f"no shard files (NAME.shard-00000-of-0000N.npy|.jsonl|.parquet) under '{directory}'")
    if out is not None and len(groups) > 1:
        raise CommandError(f"out= names one file, but '{directory}' holds {len(groups)} sets of shards")
    done = []
    for (stem, suffix, count), files in groups.items():
        missing = [i for i in range(count) if i not in files]
        if missing:
            raise CommandError(f"'{stem}{suffix}': shard(s) {missing} of {count} are missing under '{directory}' "
                               "(each run of shard.index=i shard.count=N writes one); nothing was merged")
        target = Path(out) if out else root / f"{stem}{suffix}"
        if target.suffix != suffix:
            raise CommandError(f"out={out}: the shards are {suffix} files; give a {suffix} name")
        done.append((target, concat([files[i] for i in range(count)], target)))
    return done
