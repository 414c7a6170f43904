"""Joining embedding files in order — the chunks of one run, or the shards of ``shard.count=N`` runs.

:func:`concat` streams ``.npy`` (one header for the whole array, then each part's raw rows), ``.jsonl`` (the
bytes) and Parquet (each part's row groups) into a temporary file next to the target and renames it into place;
memory is one block of bytes or one row group, whatever the total. :func:`merge_dir` finds the shard files
``NAME.shard-00001-of-00003.npy`` under a directory (a sweep's job directories included) and joins them in shard
order into ``NAME.npy`` (``stpipe merge DIR``) — only after verifying all of them: each of the N shards is there
exactly once, as a regular file (a link is refused, never followed), with the manifest ``stpipe encode`` wrote
next to it (``NAME.shard-00001-of-00003.npy.manifest.json``: the model and settings keys, the input's rows and
size, the shard's rows, bytes and SHA-256); every shard's bytes match its manifest (a truncated or edited shard is
refused) and all manifests name the same model, settings and input. A shard of no rows (more shards than inputs)
is an empty file with its manifest, and merges as nothing.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stpipe.errors import CommandError
from stpipe.files import atomic_write, read_regular

SHARD_VERSION = 1
MAX_SHARD_MANIFEST = 1 << 20
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


def _empty(suffix: str, parts: Sequence[Path], fh: Any) -> int:
    """No rows (a shard of an input with fewer rows than shards): an empty file of the format."""
    if suffix == ".npy":
        import numpy as np

        np.save(fh, np.zeros((0,), dtype=np.float32), allow_pickle=False)
    elif suffix == ".parquet":
        from stpipe.corpus.readers import pyarrow

        pa = pyarrow()
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"id": pa.array([], pa.int64())}), fh)
    return 0


def concat(parts: Sequence[Path], target: Path) -> int:
    """Join ``parts`` (all of ``target``'s format) into ``target`` atomically; the number of rows."""
    join = {".npy": _concat_npy, ".jsonl": _concat_jsonl, ".parquet": _concat_parquet}[target.suffix]
    if not parts:
        join = functools.partial(_empty, target.suffix)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target) as fh:
            rows = join(parts, fh)
    except OSError as exc:
        raise CommandError(f"output '{target}': cannot write it: {exc.strerror or exc}") from None
    return rows


def manifest_path(shard: Path) -> Path:
    return shard.with_name(shard.name + ".manifest.json")


def write_shard_manifest(target: Path, info: dict[str, Any], rows: int) -> None:
    """The manifest of a finished shard (see the module docstring), written atomically next to it."""
    from stpipe.corpus.partial import file_sha256

    data = {"stpipe_shard": SHARD_VERSION, **info, "file": target.name, "rows": rows,
            "bytes": target.stat().st_size, "sha256": file_sha256(target)}
    try:
        with atomic_write(manifest_path(target), "w", "utf-8") as fh:
            fh.write(json.dumps(data, indent=1))
    except OSError as exc:
        raise CommandError(f"output '{target}': cannot write its manifest: {exc.strerror or exc}") from None


def find_shards(directory: Path) -> dict[tuple[str, str, int], dict[int, Path]]:
    """``(stem, suffix, count) → {index: file}`` of the shard files under ``directory`` (links not followed)."""
    found: dict[tuple[str, str, int], dict[int, Path]] = {}
    paths = sorted(Path(d, f) for d, _, files in os.walk(directory) for f in files)
    for p in paths:
        m = SHARD.match(p.name)
        if not m:
            continue
        if not stat.S_ISREG(os.lstat(p).st_mode):
            raise CommandError(f"'{p}' is a link (or not a regular file); stpipe merge never follows links: copy "
                               "the shard file itself there; nothing was merged")
        group = found.setdefault((m["stem"], m["suffix"], int(m["count"])), {})
        index = int(m["index"])
        if index in group:
            raise CommandError(f"shard {index} of '{m['stem']}{m['suffix']}' is there twice: {group[index]} and "
                               f"{p}; remove one; nothing was merged")
        group[index] = p
    return found


def _check_shard(p: Path, index: int, count: int) -> dict[str, Any]:
    """The manifest of shard ``p`` once its bytes are verified against it."""
    from stpipe.corpus.partial import file_sha256

    rerun = f"rerun `stpipe encode … shard.index={index} shard.count={count}`; nothing was merged"
    data = read_regular(manifest_path(p), MAX_SHARD_MANIFEST)
    try:
        m = json.loads(data) if data is not None else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        m = None
    keys = ("model", "settings", "inputs", "rows", "bytes", "sha256")
    if not isinstance(m, dict) or m.get("stpipe_shard") != SHARD_VERSION or any(k not in m for k in keys):
        raise CommandError(f"'{p}': no valid manifest ({manifest_path(p).name}: missing, truncated, a link or not "
                           f"stpipe's); {rerun}")
    if (m.get("index"), m.get("count"), m.get("file")) != (index, count, p.name):
        raise CommandError(f"'{p}': its manifest describes shard {m.get('index')} of {m.get('count')} "
                           f"({m.get('file')}), not this file; {rerun}")
    size = os.lstat(p).st_size
    if size != m["bytes"] or file_sha256(p) != m["sha256"]:
        what = f"{size} bytes, its manifest says {m['bytes']}" if size != m["bytes"] else "its content changed"
        raise CommandError(f"'{p}' is not the shard its run wrote ({what}: truncated or edited); {rerun}")
    return m


def merge_dir(directory: str | os.PathLike, out: str | None = None) -> list[tuple[Path, int]]:
    """Merge every complete set of shards under ``directory`` once all are verified; ``(written file, rows)``."""
    root = Path(directory)
    if not root.is_dir():
        raise CommandError(f"'{directory}' is not a directory (stpipe merge DIR: the directory of the shards)")
    groups = find_shards(root)
    if not groups:
        raise CommandError(f"no shard files (NAME.shard-00000-of-0000N.npy|.jsonl|.parquet) under '{directory}'")
    if out is not None and len(groups) > 1:
        raise CommandError(f"out= names one file, but '{directory}' holds {len(groups)} sets of shards")
    plans = []
    for (stem, suffix, count), files in groups.items():
        missing = [i for i in range(count) if i not in files]
        if missing:
            raise CommandError(f"'{stem}{suffix}': shard(s) {missing} of {count} are missing under '{directory}' "
                               "(each run of shard.index=i shard.count=N writes one); nothing was merged")
        target = Path(out) if out else root / f"{stem}{suffix}"
        if target.suffix != suffix:
            raise CommandError(f"out={out}: the shards are {suffix} files; give a {suffix} name")
        manifests = [_check_shard(files[i], i, count) for i in range(count)]
        for i, m in enumerate(manifests[1:], start=1):
            for key, what in (("model", "model"), ("settings", "encode settings"), ("inputs", "input")):
                if m[key] != manifests[0][key]:
                    raise CommandError(f"'{files[i]}' was encoded with another {what} than '{files[0]}'; shards of "
                                       "one output come from one command (the same model, settings and input) "
                                       "with shard.index changed; nothing was merged")
        plans.append((target, [files[i] for i in range(count) if manifests[i]["rows"]],
                      sum(m["rows"] for m in manifests)))
    done = []
    for target, parts, rows in plans:
        written = concat(parts, target)
        if written != rows:
            raise CommandError(f"'{target}': joined {written} rows, the shards' manifests say {rows}")
        done.append((target, written))
    return done
