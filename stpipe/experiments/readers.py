"""Readers of evaluation files, line by line: each yields its records and, in their place, a :class:`Problem`
naming ``file:line`` for a line it cannot use — so one pass both checks a file (:func:`stpipe.experiments.data.
check_data`) and reads it (the evaluators), and a file is never loaded whole to be checked.

* STS pairs (:func:`iter_sts`): the STS Benchmark layout (``stsb``: tab-separated, no quoting, no header; score
  in column 5, sentences in columns 6 and 7, further columns ignored), or CSV / TSV with a header row, or JSONL,
  with configurable column names (``columns: {sentence1, sentence2, score}``). With ``score_range: [lo, hi]`` a
  score outside is a problem and scores are normalised to 0..1.
* BEIR directories (:func:`iter_corpus`, :func:`read_queries`, :func:`read_qrels`): ``corpus.jsonl`` (``_id``,
  ``title``, ``text``; a non-empty title is joined to the text by a space), ``queries.jsonl`` (``_id``,
  ``text``), ``qrels/<split>.tsv`` (query-id, corpus-id, integer score; a header row; score > 0 is relevant).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path as FsPath
from typing import Any, NamedTuple

from stpipe.errors import Problem, did_you_mean
from stpipe.experiments.data import DATASETS, DataConfig

STS_FORMATS = ("stsb", "csv", "tsv", "jsonl")
RETRIEVAL_FORMATS = ("beir",)
DEFAULT_COLUMNS = {"sentence1": "sentence1", "sentence2": "sentence2", "score": "score"}
STSB_COLUMNS = 7  # genre, file, year, id, score, sentence1, sentence2 (some rows carry two more)


class Pair(NamedTuple):
    sentence1: str
    sentence2: str
    score: float  # normalised to 0..1 when the config has a score_range
    line: int


def _missing_file(config: DataConfig, f: FsPath, what: str) -> Problem:
    exists = "is a directory" if f.is_dir() else "does not exist"
    hint = did_you_mean(config.options.get("path", ""), DATASETS)
    return config.problem("data.file", f"{what} '{f}' {exists}", found=str(f),
                          hint=(hint + " " if hint else "") + "give the path of your data, or a shipped data set: "
                          + ", ".join(DATASETS))


# ---------------------------------------------------------------------------------------------------- STS
def sts_format(config: DataConfig) -> str:
    """The configured ``format``, else from the file: .jsonl → jsonl; a .csv/.tsv whose first line has the
    STS Benchmark's tab-separated columns with a number in column 5 → stsb; else by suffix (csv, tsv)."""
    fmt = config.get("format")
    if fmt:
        return fmt
    suffix = config.path.suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    try:
        with open(config.path, encoding="utf-8") as fh:
            first = fh.readline().rstrip("\r\n").split("\t")
        if len(first) >= STSB_COLUMNS:
            float(first[4])
            return "stsb"
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    return "tsv" if suffix == ".tsv" else "csv"


def score_range(config: DataConfig, fmt: str) -> tuple[float, float] | None:
    """The configured ``score_range``; [0, 5] for the STS Benchmark layout; else None (scores as given)."""
    rng = config.get("score_range", [0, 5] if fmt == "stsb" else None)
    return None if rng is None else (float(rng[0]), float(rng[1]))


def _score(config: DataConfig, text: Any, line: int, column: str, rng: tuple[float, float] | None) -> float | Problem:
    """The score of a line (normalised to 0..1 when there is a score range), or its problem."""
    bad = f"the score ({column}) is not a number: {text!r}"
    if isinstance(text, bool) or not isinstance(text, int | float | str):
        return config.problem("data.score", bad, line=line)
    try:
        value = float(text)
    except ValueError:
        return config.problem("data.score", bad, line=line, hint="each line needs a numeric gold score")
    if not math.isfinite(value):
        return config.problem("data.score", f"the score ({column}) is not finite: {text!r}", line=line)
    if rng is None:
        return value
    lo, hi = rng
    if not lo <= value <= hi:
        return config.problem("data.score", f"the score {value:g} is outside the score range [{lo:g}, {hi:g}]",
                              line=line, key="score_range", expected=f"{lo:g} ≤ score ≤ {hi:g}", found=repr(text),
                              hint="fix the line, or set score_range in the data config to the scale of the file")
    return (value - lo) / (hi - lo) if hi > lo else value


def _pair(config: DataConfig, s1: Any, s2: Any, score: Any, line: int, column: str,
          rng: tuple[float, float] | None) -> Pair | Problem:
    for key, s in (("sentence1", s1), ("sentence2", s2)):
        if not isinstance(s, str):
            return config.problem("data.columns", f"{key} is not a string: {s!r}", line=line, key=("columns", key))
    value = _score(config, score, line, column, rng)
    return value if isinstance(value, Problem) else Pair(s1, s2, value, line)


def _iter_stsb(config: DataConfig, fh: Any, rng: tuple[float, float] | None) -> Iterator[Pair | Problem]:
    for n, raw in enumerate(fh, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < STSB_COLUMNS:
            yield config.problem("data.line", f"expected at least {STSB_COLUMNS} tab-separated columns (the score in "
                                 f"column 5, the sentences in columns 6 and 7), found {len(fields)}", line=n,
                                 key="format", hint="format: stsb is the STS Benchmark layout; for a file with a "
                                 "header row use format: csv or tsv")
            continue
        yield _pair(config, fields[5], fields[6], fields[4], n, "column 5", rng)


def _columns(config: DataConfig) -> dict[str, str]:
    return {**DEFAULT_COLUMNS, **(config.get("columns", {}))}


def _iter_table(config: DataConfig, fh: Any, fmt: str, rng: tuple[float, float] | None) -> Iterator[Pair | Problem]:
    from stpipe.corpus.lines import table_kwargs  # one quoting rule per format, for every reader

    reader = csv.reader(fh, **table_kwargs(fmt))
    header = next(reader, None)
    if header is None:
        return
    cols = _columns(config)
    index: dict[str, int] = {}
    for role, name in cols.items():
        if name not in header:
            hint = did_you_mean(name, header)
            yield config.problem("data.columns", f"no column '{name}' ({role}) in the header row", line=1,
                                 key=("columns", role), expected=name, found=", ".join(header),
                                 hint=(hint + " " if hint else "") + f"set columns.{role} in the data config")
        else:
            index[role] = header.index(name)
    if len(index) < len(cols):
        return
    for row in reader:
        n = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(index.values()):
            yield config.problem("data.line", f"expected {len(header)} columns, found {len(row)}", line=n)
            continue
        yield _pair(config, row[index["sentence1"]], row[index["sentence2"]], row[index["score"]], n,
                    f"column '{cols['score']}'", rng)


def iter_jsonl(config: DataConfig, f: FsPath) -> Iterator[tuple[int, dict[str, Any]] | Problem]:
    """``(line, object)`` for each non-blank line of a JSONL file; a Problem for a line that is not a JSON object."""
    with open(f, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield config.problem("data.line", f"not valid JSON: {exc.msg} (column {exc.colno})", line=n, file=f,
                                     hint="each line is one JSON object, e.g. {\"sentence1\": …}")
                continue
            if not isinstance(obj, dict):
                yield config.problem("data.line", f"a line is a JSON object, found {type(obj).__name__}", line=n,
                                     file=f)
                continue
            yield n, obj


def _iter_jsonl_pairs(config: DataConfig, rng: tuple[float, float] | None) -> Iterator[Pair | Problem]:
    cols = _columns(config)
    for item in iter_jsonl(config, config.path):
        if isinstance(item, Problem):
            yield item
            continue
        n, obj = item
        missing = [role for role, name in cols.items() if name not in obj]
        if missing:
            role = missing[0]
            hint = did_you_mean(cols[role], obj)
            yield config.problem("data.columns", f"no key '{cols[role]}' ({role})", line=n, key=("columns", role),
                                 found=", ".join(obj), hint=(hint + " " if hint else "") +
                                 f"set columns.{role} in the data config")
            continue
        yield _pair(config, obj[cols["sentence1"]], obj[cols["sentence2"]], obj[cols["score"]], n,
                    f"key '{cols['score']}'", rng)


def iter_sts(config: DataConfig) -> Iterator[Pair | Problem]:
    """The scored pairs of an STS file, in file order; a Problem for each line that cannot be used (and one for a
    missing file, or a file without a single pair)."""
    f = config.path
    if not f.is_file():
        yield _missing_file(config, f, "data file")
        return
    fmt = sts_format(config)
    rng = score_range(config, fmt)
    count = bad = 0
    try:
        if fmt == "jsonl":
            items: Iterator[Pair | Problem] = _iter_jsonl_pairs(config, rng)
            for item in items:
                count += not isinstance(item, Problem)
                bad += isinstance(item, Problem)
                yield item
        else:
            with open(f, newline="", encoding="utf-8") as fh:
                items = _iter_stsb(config, fh, rng) if fmt == "stsb" else _iter_table(config, fh, fmt, rng)
                for item in items:
                    count += not isinstance(item, Problem)
                    bad += isinstance(item, Problem)
                    yield item
    except UnicodeDecodeError as exc:
        yield config.problem("data.encoding", f"the file is not UTF-8 text ({exc.reason})", hint="save it as UTF-8")
    except csv.Error as exc:
        yield config.problem("data.line", f"malformed {fmt.upper()} quoting ({exc}): a quoted field ends with \" "
                             "followed by the delimiter or the line end", hint="write a quote inside a field as \"\"")
        return
    if count < 2 and not bad:
        yield config.problem("data.empty", f"the file holds {count} scored pair{'s' if count != 1 else ''}; a "
                             "correlation needs at least 2", hint=f"check the file and format ({fmt})")


# ---------------------------------------------------------------------------------------------------- BEIR
def beir_files(config: DataConfig) -> tuple[FsPath, FsPath, FsPath]:
    """``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` of a BEIR directory."""
    d = config.path
    return d / "corpus.jsonl", d / "queries.jsonl", d / "qrels" / f"{config.get('split', 'test')}.tsv"


def beir_file_problems(config: DataConfig) -> list[Problem]:
    """The BEIR directory and its three files exist."""
    if not config.path.is_dir():
        what = "is a file" if config.path.is_file() else "does not exist"
        return [config.problem("data.file", f"BEIR directory '{config.path}' {what}", found=str(config.path),
                               hint="path: a directory holding corpus.jsonl, queries.jsonl and qrels/<split>.tsv")]
    out = []
    for f in beir_files(config):
        if not f.is_file():
            p = _missing_file(config, f, "BEIR file")
            if f.parent.name == "qrels":
                splits = sorted(x.stem for x in f.parent.glob("*.tsv"))
                p = config.problem("data.file", f"qrels file '{f}' does not exist", key="split", found=str(f),
                                   hint="splits here: " + (", ".join(splits) or "none"))
            out.append(p)
    return out


def _record(config: DataConfig, f: FsPath, n: int, obj: dict[str, Any]) -> tuple[str, str] | Problem:
    """``(_id, text)`` of a corpus or queries line (title + text for the corpus)."""
    if "_id" not in obj or not isinstance(obj["_id"], str | int) or isinstance(obj["_id"], bool):
        return config.problem("data.columns", "a line needs an '_id' (a string)", line=n, file=f,
                              found=", ".join(obj))
    text, title = obj.get("text"), obj.get("title") or ""
    if not isinstance(text, str) or not isinstance(title, str):
        return config.problem("data.columns", "a line needs a 'text' string ('title' is optional)", line=n, file=f,
                              found=", ".join(obj))
    return str(obj["_id"]), f"{title} {text}".strip() if title else text


def iter_records(config: DataConfig, f: FsPath) -> Iterator[tuple[str, str] | Problem]:
    """``(_id, text)`` of each line of ``corpus.jsonl`` or ``queries.jsonl`` (a Problem for a repeated id)."""
    seen: set[str] = set()
    for item in iter_jsonl(config, f):
        rec = item if isinstance(item, Problem) else _record(config, f, *item)
        if not isinstance(rec, Problem):
            if rec[0] in seen:
                rec = config.problem("data.duplicate-id", f"the id '{rec[0]}' appears twice", line=item[0], file=f,
                                     hint="each _id names one record")
            seen.add(rec[0] if not isinstance(rec, Problem) else "")
        yield rec


def iter_corpus(config: DataConfig) -> Iterator[tuple[str, str] | Problem]:
    """The documents of ``corpus.jsonl`` as ``(id, text)``, streamed."""
    return iter_records(config, beir_files(config)[0])


def iter_qrels(config: DataConfig) -> Iterator[tuple[str, str, int] | Problem]:
    """``(query_id, corpus_id, score)`` of ``qrels/<split>.tsv`` (its header row skipped)."""
    f = beir_files(config)[2]
    with open(f, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, start=1):
            fields = raw.rstrip("\r\n").split("\t")
            if not raw.strip() or (n == 1 and not fields[-1].strip().lstrip("-").isdigit()):
                continue  # the header row (query-id, corpus-id, score)
            if len(fields) < 3:
                yield config.problem("data.line", f"expected 3 tab-separated columns (query-id, corpus-id, score), "
                                     f"found {len(fields)}", line=n, file=f)
                continue
            try:
                score = int(fields[2])
            except ValueError:
                yield config.problem("data.score", f"the relevance score is not an integer: {fields[2]!r}", line=n,
                                     file=f, hint="qrels scores are integers; > 0 means relevant")
                continue
            yield fields[0], fields[1], score
