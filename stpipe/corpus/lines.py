"""The line formats of ``stpipe encode``'s inputs — ``.txt``, ``.jsonl``, ``.csv``, ``.tsv`` — row by row.

One quoting rule per format (the same for every reader of stpipe: :func:`table_kwargs` is also what the STS and
training data readers use):

* ``.csv`` — RFC 4180: fields separated by commas; a field may be quoted with ``"`` (then it may hold commas,
  newlines and ``""`` for a quote). Parsed strictly: a quote never closed (it would swallow the rest of the file)
  or text right after a closing quote is refused with the line where the record starts, and every record has the
  header's number of fields.
* ``.tsv`` — no quoting: fields are separated by tabs and ``"`` is an ordinary character, kept as it is (a text
  cannot hold a tab or a newline).
* ``.txt`` — one input per line, kept as it is; ``.jsonl`` — one JSON value per line.

Every input is bounded: a line (or a CSV field) longer than ``max_input_chars`` characters (a run setting,
default :data:`DEFAULT_MAX_CHARS`) is refused with its line number, and a line is never read further than that.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stpipe.errors import CommandError
from stpipe.modules.modality import IMAGE_SUFFIXES

DEFAULT_MAX_CHARS = 1_000_000
"""``max_input_chars``: the longest input (characters) ``stpipe encode`` reads."""


def table_kwargs(fmt: str) -> dict[str, Any]:
    """``csv.reader``'s arguments for a ``.csv`` or ``.tsv`` file (see the module docstring)."""
    if fmt == "tsv":
        return {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
    return {"delimiter": ",", "strict": True}


class ImagePath(str):
    """A line of an inputs file that names an existing image file; ``file`` is that file, ``where`` the line."""

    file: Path
    where: str = ""


def image_path(text: str, file: Path, where: str) -> ImagePath:
    item = ImagePath(text)
    item.file, item.where = file, where
    return item


def _too_long(where: str, max_chars: int) -> CommandError:
    return CommandError(f"{where}: an input longer than max_input_chars={max_chars} characters; split it, or raise "
                        "the limit with max_input_chars=N")


def _seek(fh: Any, offset: int) -> None:
    try:
        fh.seek(offset)
    except OSError:  # a pipe (stdin): read from where it is
        if offset:
            raise


def _readline(fh: Any, where: str, max_chars: int) -> bytes:
    """One line, read at most ``4 · max_chars`` bytes far (a UTF-8 character is at most 4 bytes)."""
    limit = 4 * max_chars + 2
    line = fh.readline(limit)
    if len(line) >= limit and not line.endswith(b"\n"):
        raise _too_long(where, max_chars)
    return line


def _line_feed(fh: Any, offset: int, line_no: int, name: str, max_chars: int) -> Iterator[tuple[int, int, bytes]]:
    _seek(fh, offset)
    while line := _readline(fh, f"{name}:{line_no}", max_chars):
        yield offset, line_no, line
        offset += len(line)
        line_no += 1


def decode(line: bytes, where: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    try:
        text = line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{where}: not UTF-8 text (byte {line[exc.start]:#04x}); save the inputs file as "
                           "UTF-8") from None
    if len(text) > max_chars:
        raise _too_long(where, max_chars)
    return text


class _Feed:
    """Decoded lines for ``csv.reader``, remembering where the next unread line starts."""

    def __init__(self, fh: Any, name: str, offset: int, line_no: int, max_chars: int):
        self.fh, self.name, self.offset, self.line_no, self.max_chars = fh, name, offset, line_no, max_chars
        _seek(fh, offset)

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        where = f"{self.name}:{self.line_no}"
        line = _readline(self.fh, where, self.max_chars)
        if not line:
            raise StopIteration
        self.offset += len(line)
        self.line_no += 1
        return decode(line, where, self.max_chars) + "\n"


def _reader(feed: _Feed, fmt: str, max_chars: int) -> Any:
    if csv.field_size_limit() < max_chars + 1:  # the csv module's own bound (128 KiB) below ours
        csv.field_size_limit(max_chars + 1)
    return csv.reader(feed, **table_kwargs(fmt))


def csv_header(fh: Any, spec: Any, name: str) -> tuple[int, int | None, int, tuple[int, int]]:
    """The text column's and id column's indexes, the number of fields, and where the first record starts."""
    feed = _Feed(fh, name, 0, 1, spec.max_chars)
    try:
        header = next(_reader(feed, spec.fmt, spec.max_chars), None)
    except csv.Error as exc:
        raise CommandError(f"{name}:1: malformed {spec.fmt.upper()} header ({exc})") from None
    if not header:
        raise CommandError(f"{name}: no header line (the first line names the columns)")
    column = spec.column or ("text" if "text" in header else None)
    if column is None or column not in header:
        what = f"no column '{column}'" if column else "no 'text' column"
        raise CommandError(f"{name}: {what}; the columns are {header}; choose one with inputs.column=NAME")
    if spec.id_column is not None and spec.id_column not in header:
        raise CommandError(f"{name}: no id column '{spec.id_column}'; the columns are {header} "
                           "(inputs.id_column=NAME)")
    id_col = header.index(spec.id_column) if spec.id_column else None
    return header.index(column), id_col, len(header), (feed.offset, feed.line_no)


def _table_rows(spec: Any, name: str, fh: Any, pos: tuple[int, int] | None,
                cols: tuple[int, int | None, int] | None) -> Iterator[tuple[tuple[int, int], Any, Any]]:
    if cols is None:
        col, id_col, width, first = csv_header(fh, spec, name)
    else:
        (col, id_col, width), first = cols, (0, 2)
    feed = _Feed(fh, name, *(pos or first), spec.max_chars)
    reader = _reader(feed, spec.fmt, spec.max_chars)
    fmt = spec.fmt.upper()
    while True:
        at = (feed.offset, feed.line_no)
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field limit" in str(exc):
                raise _too_long(f"{name}:{at[1]}", spec.max_chars) from None
            why = "a quote opened here is never closed" if "end of data" in str(exc) else str(exc)
            raise CommandError(f"{name}:{at[1]}: malformed {fmt} quoting ({why}); a quoted field ends with \" "
                               "followed by the delimiter or the line end (write a quote inside one as \"\")"
                               ) from None
        if not row:
            continue
        if len(row) != width:
            raise CommandError(f"{name}:{at[1]}: {len(row)} field(s), but the header names {width}"
                               + (" (a record that spans lines holds an unclosed quote)"
                                  if feed.line_no - at[1] > 1 else ""))
        if len(row[col]) > spec.max_chars:
            raise _too_long(f"{name}:{at[1]}", spec.max_chars)
        yield at, row[col], row[id_col] if id_col is not None else None


def line_rows(spec: Any, name: str, fh: Any, pos: tuple[int, int] | None, check: bool,
              cols: tuple[int, int | None, int] | None = None) -> Iterator[tuple[tuple[int, int], Any, Any]]:
    """``(position, item, id)`` of each row from ``pos``; ``check``: parse and check everything (pre-scan);
    ``cols``: a table's columns known already (``fh`` then starts at a record, not at the header)."""
    if spec.fmt in ("csv", "tsv"):
        yield from _table_rows(spec, name, fh, pos, cols)
        return
    base = Path(name).parent
    id_type: type | None = None
    for offset, line_no, raw in _line_feed(fh, *(pos or (0, 1)), name, spec.max_chars):
        where = f"{name}:{line_no}"
        if spec.fmt == "text" and not check and not raw.strip():
            continue
        line = decode(raw, where, spec.max_chars)
        if not line.strip():
            continue
        if spec.fmt == "jsonl":
            item, ident = _json_row(line, spec, base, where)
            if spec.id_column is not None:
                id_type = _same_type(ident, id_type, where, spec.id_column)
        else:
            item, ident = _text_row(line, base, where) if not check else line, None
        yield (offset, line_no), item, ident


def _same_type(ident: Any, seen: type | None, where: str, key: str) -> type:
    """Ids of one type (a Parquet column has one): strings, or integers."""
    kind = type(ident)
    if kind not in (str, int):
        raise CommandError(f"{where}: id '{key}' is {json.dumps(ident)}; ids are strings or integers "
                           "(inputs.id_column)")
    if seen is not None and kind is not seen:
        raise CommandError(f"{where}: id '{key}' is a {kind.__name__}, the ids before are {seen.__name__}s; give "
                           "ids of one type (inputs.id_column)")
    return kind


def _text_row(line: str, base: Path, where: str) -> Any:
    stripped = line.strip()
    if stripped.lower().endswith(IMAGE_SUFFIXES) and (base / stripped).is_file():
        return image_path(line, base / stripped, where)
    return line


def _json_row(line: str, spec: Any, base: Path, where: str) -> tuple[Any, Any]:
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
