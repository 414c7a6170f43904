"""Training data: a CSV / TSV / JSONL file with named columns, or the STS Benchmark layout — the ``data`` node of
``stpipe train`` (``data=stsb-train`` picks ``conf/data/stsb-train.yaml``, the same files ``stpipe evaluate``
reads). Checked against ``schemas/training_data.schema.json`` and read line by line before any weight loads.

``columns`` selects and renames: a list keeps those columns in that order; a mapping ``{new_name: file_column}``
renames too. A column named ``score`` or ``label`` (after renaming) is the label: parsed as a number and, with
``score_range: [lo, hi]``, checked and normalised to 0..1 (the STS Benchmark layout: [0, 5], so scores are /5).
The other columns are texts, in order (the loss's inputs; ``router_mapping`` routes them by name).

>>> d = read_training_data({"path": "stsb-train", "format": "stsb"})
>>> d.columns, len(d.rows), d.rows[0][2]
(['sentence1', 'sentence2', 'score'], 5749, 1.0)
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path as FsPath
from typing import Any

from stpipe.errors import ConfigError, Path, Problem, did_you_mean
from stpipe.experiments.data import DataConfig, collect, resolve_data_path
from stpipe.training.losses import LABEL_COLUMNS

SCHEMA = "training_data.schema.json"
TITLE = "invalid training data"
STSB_COLUMNS = ("sentence1", "sentence2", "score")
#: data.format (schemas/training_data.schema.json): the STS readers' formats, or null (from the file)
FORMATS = ("stsb", "csv", "tsv", "jsonl", None)


@dataclass
class TrainingData:
    """The rows of a training file: ``columns`` (names, in order) and one tuple per line (labels as floats)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    name: str
    path: FsPath
    lines: list[int] = field(default_factory=list)  # the file line of each row (for messages)

    @property
    def label_column(self) -> str | None:
        return next((c for c in self.columns if c in LABEL_COLUMNS), None)

    @property
    def text_columns(self) -> list[str]:
        return [c for c in self.columns if c not in LABEL_COLUMNS]


@cache
def _validator() -> Any:
    from stpipe.config.schema import NodeValidator, load_schema

    return NodeValidator(load_schema(SCHEMA))


def node_problems(node: Any, base: Path = ("data",)) -> list[Problem]:
    """The data node's own problems (schema), reading no file."""
    from stpipe.config.schema_problems import schema_problems

    if not isinstance(node, Mapping):
        found = "nothing" if node is None else type(node).__name__
        return [Problem(code="schema.type", path=base, message=f"the training data is a mapping, found {found}",
                        hint="choose a data set with data=<name> (conf/data/<name>.yaml), e.g. data=stsb-train, "
                        "and point it at your file with data.path=FILE")]
    return schema_problems(_validator(), dict(node), base, "the training data")


def _config(node: Mapping[str, Any], base: Path, source: str | None) -> DataConfig:
    path = resolve_data_path(str(node["path"]))
    return DataConfig(evaluator=str(node.get("evaluator") or "train"), path=path, name=str(node.get("name") or
                      path.stem), options=dict(node), base=base, source=source)


def _fmt(cfg: DataConfig) -> str:
    from stpipe.experiments.readers import sts_format

    return sts_format(cfg)


def _wanted(cfg: DataConfig, available: list[str], line: int) -> tuple[list[str], list[str]] | Problem:
    """(output names, file columns) from ``columns`` (default: every column), or the problem of a missing one."""
    spec = cfg.get("columns")
    pairs = list(spec.items()) if isinstance(spec, Mapping) else [(c, c) for c in (spec or available)]
    for new, old in pairs:
        if old not in available:
            hint = did_you_mean(old, available)
            key = ("columns", new) if isinstance(spec, Mapping) else "columns"
            return cfg.problem("data.columns", f"no column '{old}' in the file", line=line, key=key,
                               expected=old, found=", ".join(available),
                               hint=(hint + " " if hint else "") + "data.columns lists the file's columns to train on")
    return [n for n, _ in pairs], [o for _, o in pairs]


def _rows(cfg: DataConfig, fmt: str) -> Iterator[tuple[int, dict[str, Any]] | list[str] | Problem]:
    """First the list of available columns (or a problem), then ``(line, {column: value})`` per line."""
    from stpipe.experiments.readers import iter_jsonl, iter_sts

    if fmt == "stsb":
        yield list(STSB_COLUMNS)
        for p in iter_sts(cfg):
            yield p if isinstance(p, Problem) else (p.line, {"sentence1": p.sentence1, "sentence2": p.sentence2,
                                                             "score": p.score})
        return
    if fmt == "jsonl":
        first = True
        for item in iter_jsonl(cfg, cfg.path):
            if first and not isinstance(item, Problem):
                yield list(item[1])
                first = False
            yield item
        return
    from stpipe.corpus.lines import table_kwargs  # one quoting rule per format, for every reader

    with open(cfg.path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, **table_kwargs(fmt))
        try:
            header = next(reader, None) or []
            yield header
            for row in reader:
                if any(cell.strip() for cell in row):
                    yield reader.line_num, dict(zip(header, row)) if len(row) == len(header) else \
                        cfg.problem("data.line", f"expected {len(header)} columns, found {len(row)}",
                                    line=reader.line_num)
        except csv.Error as exc:
            yield cfg.problem("data.line", f"malformed {fmt.upper()} quoting ({exc})", line=reader.line_num)


def _records(cfg: DataConfig, fmt: str, out: list[str]) -> Iterator[tuple[int, tuple[Any, ...]] | Problem]:
    """Each row as ``(line, values)`` (labels parsed and normalised), or problems; the output column names go
    into ``out``."""
    from stpipe.experiments.readers import _score, score_range

    rng = None if fmt == "stsb" else score_range(cfg, fmt)  # stsb: iter_sts normalised already
    names = cols = None
    for item in _rows(cfg, fmt):
        if isinstance(item, Problem):
            yield item
            continue
        if isinstance(item, list):
            picked = _wanted(cfg, item, 1)
            if isinstance(picked, Problem):
                yield picked
                return
            names, cols = picked
            out.extend(names)
            continue
        line, obj = item
        if any(c not in obj for c in cols):
            yield cfg.problem("data.columns", f"no key '{next(c for c in cols if c not in obj)}'", line=line,
                              key="columns", found=", ".join(obj))
            continue
        values: list[Any] = []
        for name, col in zip(names, cols):
            v = obj[col]
            if name in LABEL_COLUMNS:
                v = _score(cfg, v, line, f"column '{col}'", rng)
            elif not isinstance(v, str):
                v = cfg.problem("data.columns", f"column '{col}' is not text: {v!r}", line=line, key="columns")
            if isinstance(v, Problem):
                yield v
                break
            values.append(v)
        else:
            yield line, tuple(values)


def read_training_data(node: Mapping[str, Any], *, base: Path = ("data",), source: str | None = None) -> TrainingData:
    """Check the data node and read its file: a :class:`TrainingData`, or a ConfigError listing every problem
    (``file:line`` for a bad line). Loads no model."""
    problems = node_problems(node, base)
    if problems:
        raise ConfigError(problems, title=TITLE)
    cfg = _config(node, base, source)
    if not cfg.path.is_file():
        from stpipe.experiments.readers import _missing_file

        raise ConfigError([_missing_file(cfg, cfg.path, "training data file")], title=TITLE)
    fmt = _fmt(cfg)
    names: list[str] = []
    rows: list[tuple[Any, ...]] = []
    lines: list[int] = []
    items = []
    try:
        for item in _records(cfg, fmt, names):
            if isinstance(item, Problem):
                items.append(item)
            else:
                lines.append(item[0])
                rows.append(item[1])
    except UnicodeDecodeError as exc:
        items.append(cfg.problem("data.encoding", f"the file is not UTF-8 text ({exc.reason})", hint="save as UTF-8"))
    if not items and not rows:
        items.append(cfg.problem("data.empty", "the file holds no training rows", hint=f"check the file ({fmt})"))
    if items:
        raise ConfigError(collect(items, cfg), title=TITLE)
    return TrainingData(columns=names, rows=rows, name=cfg.name, path=cfg.path, lines=lines)
