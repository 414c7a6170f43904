"""Streaming readers of ``stpipe encode``'s inputs: ``.txt``, ``.jsonl``, ``.csv``/``.tsv``, Parquet, stdin.

:func:`open_source` checks and counts the inputs before any weight loads (a *pre-scan*: every line parsed — see
:mod:`stpipe.corpus.lines` for the formats' quoting rules and the ``max_input_chars`` bound — the CSV header and
Parquet schema checked) and records where each chunk of ``chunk_size`` rows starts (a byte offset and line number
for line formats, a row index for Parquet), so a chunk can be read on its own — by a resumed run, by a worker, by
a Ray actor — without reading the file from the beginning. Memory stays that of one chunk whatever the file size.
Blank lines are skipped (they are not inputs). Items are raw: a text, an :class:`ImagePath` (a text line naming
an existing image file) or a record ``{"text": …, "image": "path"}``; images are opened by
:func:`stpipe.corpus.runner.prepare` right before they are encoded.

The pre-scan also takes the inputs' *fingerprint* (:attr:`Source.fingerprint`: size, mtime and a SHA-256 of the
bytes this run reads): a partial output is resumed only under the same fingerprint. Each chunk of a line format
is read as the bytes the pre-scan hashed and checked against that hash (a Parquet file against its size and
mtime), so an input rewritten during a run is refused (:class:`InputChanged`) instead of mixing old and new rows.
stdin is read line by line (each line bounded), never as a whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stpipe.corpus.lines import DEFAULT_MAX_CHARS, ImagePath, image_path, line_rows, record  # noqa: F401
from stpipe.errors import CommandError

FORMATS = {".txt": "text", ".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}
#: the extra that installs pyarrow (Parquet inputs and outputs)
PARQUET_EXTRA = "corpus"
BLOCK = 1 << 22


class InputChanged(CommandError):
    """The inputs file no longer holds what the pre-scan read (rewritten or edited during the run)."""


@dataclass(frozen=True)
class InputSpec:
    """``inputs=`` as a mapping: the file (None or '-' is stdin), the text column, the id column; and the
    longest input read (``max_input_chars``)."""

    path: str | None
    column: str | None = None
    id_column: str | None = None
    max_chars: int = DEFAULT_MAX_CHARS

    @property
    def fmt(self) -> str:
        if self.path in (None, "-"):
            return "text"
        return FORMATS.get(Path(self.path).suffix.lower(), "text")


def input_spec(inputs: Any, max_chars: int = DEFAULT_MAX_CHARS) -> InputSpec:
    """``inputs=FILE`` (a string) or ``{path, column, id_column}`` (``inputs.column=text``)."""
    if inputs is None or isinstance(inputs, str):
        return InputSpec(inputs, max_chars=max_chars)
    if isinstance(inputs, Mapping):
        return InputSpec(inputs.get("path"), inputs.get("column"), inputs.get("id_column"), max_chars)
    raise CommandError(f"inputs: expected a file name or {{path, column, id_column}}, found {inputs!r}")


def pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise CommandError(f"Parquet needs pyarrow: pip install 'stpipe[{PARQUET_EXTRA}]'") from None
    return pa


@dataclass
class Source:
    """The rows ``[start, stop)`` of an input, cut into chunks; ``positions[k]`` is where chunk k starts,
    ``ends[k]`` where its bytes end and ``hashes[k]`` their SHA-256 (line formats)."""

    spec: InputSpec
    name: str
    total: int  # rows of the whole input
    start: int
    stop: int
    chunk_size: int
    positions: list[Any] = field(default_factory=list)
    memory: list[Any] | None = None  # stdin: the rows themselves
    ends: list[int] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    cols: tuple[int, int | None, int] | None = None  # a table's text/id column indexes and width
    stat: tuple[int, int] = (0, 0)  # size, mtime_ns at the pre-scan
    digest: str = ""  # SHA-256 of what this run reads

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {"size": self.stat[0], "mtime_ns": self.stat[1], "sha256": self.digest, "cols": self.cols,
                "total": self.total}

    def chunk_rows(self, k: int) -> tuple[int, int]:
        a = self.start + k * self.chunk_size
        return a, min(a + self.chunk_size, self.stop)

    def read(self, k: int) -> tuple[list[Any], list[Any]]:
        """Chunk ``k``: its items and their ids (the id column, else the row number in the whole input)."""
        a, b = self.chunk_rows(k)
        if self.memory is not None:
            return self.memory[a:b], list(range(a, b))
        if self.spec.fmt == "parquet":
            self.check_unchanged()
            return _parquet_rows(self.spec, self.name, a, b - a)
        offset, line_no = self.positions[k]
        data = _read_range(self, offset, self.ends[k])
        if hashlib.sha256(data).hexdigest() != self.hashes[k]:
            raise self.changed(f"the bytes of rows {a} … {b - 1} (from line {line_no}) differ")
        fh = _Window(data, offset)
        items: list[Any] = []
        ids: list[Any] = []
        for i, (_, item, ident) in enumerate(line_rows(self.spec, self.name, fh, (offset, line_no), False,
                                                       self.cols)):
            if i == b - a:
                break
            items.append(item)
            ids.append(a + i if ident is None else ident)
        return items, ids

    def check_unchanged(self) -> None:
        if self.memory is None and _stat(self.name) != self.stat:
            raise self.changed("its size or modification time changed")

    def verify_end(self) -> None:
        """After the last chunk: a Parquet input still holds what the pre-scan hashed (each chunk of a line
        format was checked as it was read)."""
        if self.memory is None and self.spec.fmt == "parquet" and _file_digest(self.name) != self.digest:
            raise self.changed("its content differs from what the pre-scan read")

    def changed(self, why: str) -> InputChanged:
        return InputChanged(f"inputs file '{self.name}' changed during the run ({why}); the rows encoded so far "
                            "came from what it held before: rerun the command (it starts over on the new inputs)")


class _Window:
    """The bytes ``[base, base + len(data))`` of a file, read like the file (absolute offsets)."""

    def __init__(self, data: bytes, base: int):
        self.buf, self.base = io.BytesIO(data), base

    def seek(self, offset: int) -> None:
        self.buf.seek(offset - self.base)

    def readline(self, limit: int = -1) -> bytes:
        return self.buf.readline(limit)


def _stat(name: str) -> tuple[int, int]:
    try:
        st = os.stat(name)
    except OSError:
        return (-1, -1)
    return st.st_size, st.st_mtime_ns


def _read_range(src: Source, a: int, b: int) -> bytes:
    try:
        with open(src.name, "rb") as fh:
            fh.seek(a)
            data = fh.read(b - a)
    except OSError as exc:
        raise src.changed(f"cannot read it: {exc.strerror or exc}") from None
    if len(data) != b - a:
        raise src.changed("it is shorter")
    return data


def slice_of(total: int, index: int, count: int) -> tuple[int, int]:
    """The ``index``-th of ``count`` contiguous, deterministic slices of ``total`` rows (sizes differ by ≤ 1)."""
    return total * index // count, total * (index + 1) // count


# ------------------------------------------------------------------------------------------------ parquet
def _parquet(spec: InputSpec, name: str) -> tuple[Any, str]:
    pyarrow()
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(spec.path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError …
        raise CommandError(f"{name}: not a readable Parquet file ({exc})") from None
    columns = pf.schema_arrow.names
    column = spec.column or ("text" if "text" in columns else None)
    if column is None or column not in columns:
        what = f"no column '{column}'" if column else "no 'text' column"
        raise CommandError(f"{name}: {what}; the columns are {columns}; choose one with inputs.column=NAME")
    if spec.id_column is not None and spec.id_column not in columns:
        raise CommandError(f"{name}: no id column '{spec.id_column}'; the columns are {columns}")
    return pf, column


def _parquet_rows(spec: InputSpec, name: str, start: int, n: int) -> tuple[list[Any], list[Any]]:
    pf, column = _parquet(spec, name)
    cols = [column] + ([spec.id_column] if spec.id_column else [])
    items: list[Any] = []
    ids: list[Any] = []
    row = 0
    try:
        for g in range(pf.num_row_groups):
            size = pf.metadata.row_group(g).num_rows
            if row + size <= start:
                row += size
                continue
            table = pf.read_row_group(g, columns=cols)
            lo = max(start - row, 0)
            part = table.slice(lo, n - len(items))
            items += part.column(column).to_pylist()
            ids += part.column(spec.id_column).to_pylist() if spec.id_column else []
            row += size
            if len(items) >= n:
                break
    except Exception as exc:
        raise CommandError(f"{name}: cannot read row {start + len(items)} ({exc})") from None
    bad = next((i for i, x in enumerate(items) if not isinstance(x, str)), None)
    if bad is not None:
        raise CommandError(f"{name}: row {start + bad}: column '{column}' is {items[bad]!r}, not a text")
    return items, ids or list(range(start, start + n))


# ------------------------------------------------------------------------------------------------ api
def _check_spec(spec: InputSpec, name: str) -> None:
    if spec.fmt == "text" and (spec.column or spec.id_column):
        raise CommandError(f"{name}: inputs.column / inputs.id_column apply to .csv, .tsv, .jsonl and .parquet "
                           "inputs; a text file has one input per line")


def open_source(inputs: Any, chunk_size: int, shard: tuple[int, int] = (0, 1),
                max_chars: int = DEFAULT_MAX_CHARS) -> Source:
    """Check and count the inputs (no weights load), find where each chunk of the shard's slice starts, and take
    the fingerprint of what the run reads."""
    spec = input_spec(inputs, max_chars)
    if spec.path in (None, "-"):
        return _stdin_source(spec, chunk_size, shard)
    name = str(spec.path)
    _check_spec(spec, name)
    if not Path(name).is_file():
        raise CommandError(f"inputs file '{name}' does not exist")
    stat = _stat(name)
    try:
        if spec.fmt == "parquet":
            pf, _ = _parquet(spec, name)
            total = pf.metadata.num_rows
            start, stop = slice_of(total, *shard)
            src = Source(spec, name, total, start, stop, chunk_size, stat=stat)
            src.positions = list(range(start, stop, chunk_size))
            src.digest = _file_digest(name)
        else:
            src = _scan_lines(spec, name, chunk_size, shard, stat)
    except OSError as exc:
        raise CommandError(f"inputs file '{name}': cannot read it: {exc.strerror or exc}") from None
    if src.total == 0:
        raise CommandError(f"{name}: no inputs found")
    src.check_unchanged()
    return src


def _scan_lines(spec: InputSpec, name: str, chunk_size: int, shard: tuple[int, int],
                stat: tuple[int, int]) -> Source:
    from stpipe.corpus.lines import csv_header

    with open(name, "rb") as fh:
        total = sum(1 for _ in line_rows(spec, name, fh, None, check=True))
        start, stop = slice_of(total, *shard)
        src = Source(spec, name, total, start, stop, chunk_size, stat=stat)
        if spec.fmt in ("csv", "tsv"):
            col, id_col, width, _ = csv_header(fh, spec, name)
            src.cols = (col, id_col, width)
        end = stat[0]
        for i, (pos, _, _) in enumerate(line_rows(spec, name, fh, None, check=False)):
            if i >= stop:
                end = pos[0]
                break
            if i >= start and (i - start) % chunk_size == 0:
                src.positions.append(pos)
        src.ends = [p[0] for p in src.positions[1:]] + [end]
        whole = hashlib.sha256()
        for (a, _), b in zip(src.positions, src.ends):
            fh.seek(a)
            h = hashlib.sha256()
            left = b - a
            while left > 0 and (block := fh.read(min(BLOCK, left))):
                h.update(block)
                left -= len(block)
            src.hashes.append(h.hexdigest())
            whole.update(h.digest())
    src.digest = whole.hexdigest()
    return src


def _file_digest(name: str) -> str:
    h = hashlib.sha256()
    with open(name, "rb") as fh:
        while block := fh.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def _stdin_source(spec: InputSpec, chunk_size: int, shard: tuple[int, int]) -> Source:
    """stdin, read line by line (each line bounded by ``max_input_chars``): the rows are kept in memory, since a
    pipe cannot be read twice."""
    if sys.stdin is None or sys.stdin.isatty():
        raise CommandError("no inputs: give inputs=FILE (one input per line, or .jsonl) or pipe text to stdin")
    stream = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else io.BytesIO(sys.stdin.read().encode())
    items = [x for _, x, _ in line_rows(dataclasses.replace(spec, path="<stdin>"), "<stdin>", stream, None,
                                        check=False)]
    if not items:
        raise CommandError("<stdin>: no inputs found")
    start, stop = slice_of(len(items), *shard)
    digest = hashlib.sha256("\n".join(map(str, items)).encode()).hexdigest()
    return Source(spec, "<stdin>", len(items), start, stop, chunk_size, list(range(start, stop, chunk_size)),
                  memory=items, digest=digest)
