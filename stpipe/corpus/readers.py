"""Streaming readers of ``stpipe encode``'s inputs: ``.txt``, ``.jsonl``, ``.csv``/``.tsv``, Parquet, stdin.

:func:`open_source` checks and counts the inputs before any weight loads (a *pre-scan*: every JSONL line parsed,
the CSV header and Parquet schema checked) and records where each chunk of ``chunk_size`` rows starts (a byte
offset and line number for line formats, a row index for Parquet), so a chunk can be read on its own — by a
resumed run, by a worker, by a Ray actor — without reading the file from the beginning. Memory stays that of
one chunk whatever the file size. Blank lines are skipped (they are not inputs). Items are raw: a text, an
:class:`ImagePath` (a text line naming an existing image file) or a record ``{"text": …, "image": "path"}``;
images are opened by :func:`stpipe.corpus.runner.prepare` right before they are encoded.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stpipe.errors import CommandError
from stpipe.modules.modality import IMAGE_SUFFIXES

FORMATS = {".txt": "text", ".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}
#: the extra that installs pyarrow (Parquet inputs and outputs)
PARQUET_EXTRA = "corpus"


class ImagePath(str):
    """A line of an inputs file that names an existing image file; ``file`` is that file, ``where`` the line."""

    file: Path
    where: str = ""


def image_path(text: str, file: Path, where: str) -> ImagePath:
    item = ImagePath(text)
    item.file, item.where = file, where
    return item


@dataclass(frozen=True)
class InputSpec:
    """``inputs=`` as a mapping: the file (None or '-' is stdin), the text column and the id column."""

    path: str | None
    column: str | None = None
    id_column: str | None = None

    @property
    def fmt(self) -> str:
        if self.path in (None, "-"):
            return "text"
        return FORMATS.get(Path(self.path).suffix.lower(), "text")


def input_spec(inputs: Any) -> InputSpec:
    """``inputs=FILE`` (a string) or ``{path, column, id_column}`` (``inputs.column=text``)."""
    if inputs is None or isinstance(inputs, str):
        return InputSpec(inputs)
    if isinstance(inputs, Mapping):
        return InputSpec(inputs.get("path"), inputs.get("column"), inputs.get("id_column"))
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
    """The rows ``[start, stop)`` of an input, cut into chunks; ``positions[k]`` is where chunk k starts."""

    spec: InputSpec
    name: str
    total: int  # rows of the whole input
    start: int
    stop: int
    chunk_size: int
    positions: list[Any] = field(default_factory=list)
    memory: list[Any] | None = None  # stdin: the rows themselves

    @property
    def rows(self) -> int:
        return self.stop - self.start

    def chunk_rows(self, k: int) -> tuple[int, int]:
        a = self.start + k * self.chunk_size
        return a, min(a + self.chunk_size, self.stop)

    def read(self, k: int) -> tuple[list[Any], list[Any]]:
        """Chunk ``k``: its items and their ids (the id column, else the row number in the whole input)."""
        a, b = self.chunk_rows(k)
        if self.memory is not None:
            return self.memory[a:b], list(range(a, b))
        return read_rows(self.spec, self.name, self.positions[k], a, b - a)


def slice_of(total: int, index: int, count: int) -> tuple[int, int]:
    """The ``index``-th of ``count`` contiguous, deterministic slices of ``total`` rows (sizes differ by ≤ 1)."""
    return total * index // count, total * (index + 1) // count


# ------------------------------------------------------------------------------------------------ line formats
def _line_feed(fh: Any, offset: int, line_no: int) -> Iterator[tuple[int, int, bytes]]:
    fh.seek(offset)
    while line := fh.readline():
        yield offset, line_no, line
        offset += len(line)
        line_no += 1


def _decode(line: bytes, where: str) -> str:
    try:
        return line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{where}: not UTF-8 text (byte {line[exc.start]:#04x}); save the inputs file as "
                           "UTF-8") from None


class _Feed:
    """Decoded lines for ``csv.reader``, remembering where the next unread line starts."""

    def __init__(self, fh: Any, name: str, offset: int, line_no: int):
        self.fh, self.name, self.offset, self.line_no = fh, name, offset, line_no
        fh.seek(offset)

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        line = self.fh.readline()
        if not line:
            raise StopIteration
        where = f"{self.name}:{self.line_no}"
        self.offset += len(line)
        self.line_no += 1
        return _decode(line, where) + "\n"


def _csv_header(fh: Any, spec: InputSpec, name: str) -> tuple[int, int | None, tuple[int, int]]:
    """The text column's and id column's indexes, and where the first record starts."""
    feed = _Feed(fh, name, 0, 1)
    header = next(csv.reader(feed, delimiter="\t" if spec.fmt == "tsv" else ","), None)
    if not header:
        raise CommandError(f"{name}: no header line (the first line names the columns)")
    column = spec.column or ("text" if "text" in header else None)
    if column is None or column not in header:
        what = f"no column '{column}'" if column else "no 'text' column"
        raise CommandError(f"{name}: {what}; the columns are {header}; choose one with inputs.column=NAME")
    if spec.id_column is not None and spec.id_column not in header:
        raise CommandError(f"{name}: no id column '{spec.id_column}'; the columns are {header} "
                           "(inputs.id_column=NAME)")
    return header.index(column), header.index(spec.id_column) if spec.id_column else None, (feed.offset,
                                                                                              feed.line_no)


def _line_rows(spec: InputSpec, name: str, fh: Any, pos: tuple[int, int] | None,
               check: bool) -> Iterator[tuple[tuple[int, int], Any, Any]]:
    """``(position, item, id)`` of each row from ``pos``; ``check``: parse and check everything (pre-scan)."""
    if spec.fmt in ("csv", "tsv"):
        col, id_col, first = _csv_header(fh, spec, name)
        feed = _Feed(fh, name, *(pos or first))
        reader = csv.reader(feed, delimiter="\t" if spec.fmt == "tsv" else ",")
        while True:
            at = (feed.offset, feed.line_no)
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise CommandError(f"{name}:{at[1]}: malformed CSV ({exc})") from None
            if not row:
                continue
            if len(row) <= max(col, id_col or 0):
                raise CommandError(f"{name}:{at[1]}: {len(row)} field(s), but the text/id column is field "
                                   f"{max(col, id_col or 0) + 1}")
            yield at, row[col], row[id_col] if id_col is not None else None
        return
    base = Path(name).parent
    for offset, line_no, raw in _line_feed(fh, *(pos or (0, 1))):
        where = f"{name}:{line_no}"
        if spec.fmt == "text" and not check and not raw.strip():
            continue
        line = _decode(raw, where)
        if not line.strip():
            continue
        if spec.fmt == "jsonl":
            item, ident = _json_row(line, spec, base, where)
        else:
            item, ident = _text_row(line, base, where) if not check else line, None
        yield (offset, line_no), item, ident


def _text_row(line: str, base: Path, where: str) -> Any:
    stripped = line.strip()
    if stripped.lower().endswith(IMAGE_SUFFIXES) and (base / stripped).is_file():
        return image_path(line, base / stripped, where)
    return line


def _json_row(line: str, spec: InputSpec, base: Path, where: str) -> tuple[Any, Any]:
    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise CommandError(f"{where}: invalid JSON ({why})") from None
    ident = None
    if spec.id_column is not None:
        if not isinstance(rec, dict) or spec.id_column not in rec:
            raise CommandError(f"{where}: no id key '{spec.id_column}' (inputs.id_column)")
        ident = rec[spec.id_column]
    if spec.column is not None:
        if not isinstance(rec, dict) or not isinstance(rec.get(spec.column), str):
            raise CommandError(f"{where}: no text key '{spec.column}' with a string value (inputs.column)")
        return rec[spec.column], ident
    if isinstance(rec, dict) and spec.id_column is not None:
        rec = {k: v for k, v in rec.items() if k != spec.id_column}
    return record(rec, base, where), ident


def record(rec: Any, base: Path, where: str) -> Any:
    """A JSONL record: a string, or ``{"text": str, "image": "path"}`` (the image path resolved, not opened)."""
    if isinstance(rec, str):
        return rec
    if not isinstance(rec, dict) or not rec:
        raise CommandError(f"{where}: expected a string or an object like {{\"text\": ..., \"image\": \"path\"}}")
    unknown = set(rec) - {"text", "image"}
    if unknown:
        raise CommandError(f"{where}: unknown key(s) {sorted(unknown)}; records may have 'text' and 'image' "
                           "(or choose a key with inputs.column=NAME)")
    if "text" in rec and not isinstance(rec["text"], str):
        raise CommandError(f"{where}: 'text' must be a string, found {json.dumps(rec['text'])}")
    if "image" in rec and (not isinstance(rec["image"], str) or not rec["image"].strip()):
        raise CommandError(f"{where}: 'image' must be an image file path (relative to the inputs file), found "
                           f"{json.dumps(rec['image'])}")
    out = dict(rec)
    if "image" in out:
        file = base / out["image"]
        if not file.is_file():
            raise CommandError(f"{where}: cannot open image '{file}': no such file")
        out["image"] = image_path(str(file), file, where)
    return out["text"] if list(out) == ["text"] else out


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
def read_rows(spec: InputSpec, name: str, pos: Any, start: int, n: int) -> tuple[list[Any], list[Any]]:
    """``n`` rows from position ``pos`` (row ``start`` of the input): items and ids."""
    if spec.fmt == "parquet":
        return _parquet_rows(spec, name, start, n)
    items: list[Any] = []
    ids: list[Any] = []
    with open(spec.path, "rb") as fh:  # type: ignore[arg-type]
        for i, (_, item, ident) in enumerate(_line_rows(spec, name, fh, pos, check=False)):
            if i == n:
                break
            items.append(item)
            ids.append(start + i if ident is None else ident)
    return items, ids


def _check_spec(spec: InputSpec, name: str) -> None:
    if spec.fmt == "text" and (spec.column or spec.id_column):
        raise CommandError(f"{name}: inputs.column / inputs.id_column apply to .csv, .tsv, .jsonl and .parquet "
                           "inputs; a text file has one input per line")


def open_source(inputs: Any, chunk_size: int, shard: tuple[int, int] = (0, 1)) -> Source:
    """Check and count the inputs (no weights load), and find where each chunk of the shard's slice starts."""
    spec = input_spec(inputs)
    if spec.path in (None, "-"):
        return _stdin_source(spec, chunk_size, shard)
    name = str(spec.path)
    _check_spec(spec, name)
    if not Path(name).is_file():
        raise CommandError(f"inputs file '{name}' does not exist")
    if spec.fmt == "parquet":
        pf, _ = _parquet(spec, name)
        total = pf.metadata.num_rows
        start, stop = slice_of(total, *shard)
        src = Source(spec, name, total, start, stop, chunk_size)
        src.positions = list(range(start, stop, chunk_size))
    else:
        try:
            with open(name, "rb") as fh:
                total = sum(1 for _ in _line_rows(spec, name, fh, None, check=True))
                start, stop = slice_of(total, *shard)
                src = Source(spec, name, total, start, stop, chunk_size)
                for i, (pos, _, _) in enumerate(_line_rows(spec, name, fh, None, check=False)):
                    if i >= stop:
                        break
                    if i >= start and (i - start) % chunk_size == 0:
                        src.positions.append(pos)
        except OSError as exc:
            raise CommandError(f"inputs file '{name}': cannot read it: {exc.strerror or exc}") from None
    if total == 0:
        raise CommandError(f"{name}: no inputs found")
    return src


def _stdin_source(spec: InputSpec, chunk_size: int, shard: tuple[int, int]) -> Source:
    if sys.stdin is None or sys.stdin.isatty():
        raise CommandError("no inputs: give inputs=FILE (one input per line, or .jsonl) or pipe text to stdin")
    try:
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    except UnicodeDecodeError as exc:
        raise CommandError(f"<stdin>: not UTF-8 text ({exc})") from None
    items = [x for _, x, _ in _line_rows(InputSpec("<stdin>"), "<stdin>",
                                         io.BytesIO(data), None, check=False)]
    if not items:
        raise CommandError("<stdin>: no inputs found")
    start, stop = slice_of(len(items), *shard)
    return Source(spec, "<stdin>", len(items), start, stop, chunk_size, list(range(start, stop, chunk_size)),
                  memory=items)
