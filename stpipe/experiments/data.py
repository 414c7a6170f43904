"""Evaluation data sets: the data config (``conf/data/<name>.yaml``, the ``data`` node) and its checks.

:func:`data_config_from` turns the node into a :class:`DataConfig`: checked against ``schemas/data.schema.json``
(the keys every evaluator takes, plus the chosen evaluator's own: its ``$defs`` entry, or a plugin class's
``schema``), the evaluator looked up by name, ``path`` resolved (a shipped data set by name —
:func:`stpipe.resources.dataset_file` — or a path). :func:`check_data` then reads the file(s) line by line —
columns, scores, JSON — without loading any model, and returns every problem with its ``file:line``; the
readers themselves live in :mod:`stpipe.experiments.readers`.

>>> cfg = data_config_from({"evaluator": "sts", "path": "stsb-dev", "format": "stsb", "score_range": [0, 5]})
>>> cfg.name, cfg.path.name, check_data(cfg)
('stsb-dev', 'sts-dev.csv', [])
>>> try:
...     data_config_from({"evaluator": "stss", "path": "x.csv"})
... except ConfigError as e:
...     print(e.problems[0].code, e.problems[0].hint)
registry.unknown-evaluator did you mean 'sts'?
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path as FsPath
from typing import Any

from stpipe.errors import ConfigError, Path, Problem
from stpipe.resources import DATASETS, conf_dir, dataset_file

DATA_SCHEMA = "data.schema.json"
#: the group of ``conf/`` that holds data set definitions (``data=stsb-dev``)
DATA_GROUP = "data"
#: title of the ConfigError for a data config or data file
TITLE = "invalid data set"
#: problems reported per file before the rest are summarised in one line
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class DataConfig:
    """A checked data config: the evaluator's name, the resolved ``path`` and the node as given (``options``)."""

    evaluator: str
    path: FsPath
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    base: Path = (DATA_GROUP,)  # where the node sits in the composed configuration (problem paths start here)
    source: str | None = None  # where the node came from (conf/data/stsb-dev.yaml, an override)

    def get(self, key: str, default: Any = None) -> Any:
        """An option of the node (``columns``, ``score_range`` …), or ``default`` when absent or null."""
        value = self.options.get(key)
        return default if value is None else value

    def problem(self, code: str, message: str, *, key: str | tuple = "path", line: int | None = None,
                file: FsPath | None = None, **kw: Any) -> Problem:
        """A problem of this data set: at ``<base>.<key>``, from ``file:line`` when a line is given."""
        keys = key if isinstance(key, tuple) else (key,)
        where = f"{file or self.path}:{line}" if line is not None else (str(file) if file else self.source)
        return Problem(code=code, path=self.base + keys, message=message, source=where, **kw)


@cache
def data_schema() -> dict[str, Any]:
    """``schemas/data.schema.json`` (do not mutate)."""
    from stpipe.config.schema import load_schema

    return load_schema(DATA_SCHEMA)


def node_schema(evaluator: str, cls: type | None) -> dict[str, Any]:
    """The schema a node for ``evaluator`` is checked against: the common keys plus the evaluator's own (a
    built-in's ``$defs`` entry, a plugin class's ``schema``), unknown keys refused; a plugin without a ``schema``
    attribute accepts any further keys."""
    base = data_schema()
    own = getattr(cls, "schema", None)
    if cls is not None and getattr(cls, "builtin", False):
        own = base["$defs"].get(evaluator)
    schema = {k: copy.deepcopy(v) for k, v in base.items() if k not in ("properties", "$defs")}
    schema["$defs"] = copy.deepcopy(base["$defs"])
    schema["properties"] = copy.deepcopy(base["properties"])
    if isinstance(own, Mapping):
        schema["properties"].update(copy.deepcopy(dict(own.get("properties", own))))
        schema["additionalProperties"] = False
    return schema


def _schema_problems(node: Mapping[str, Any], cls: type | None, base: Path) -> list[Problem]:
    from stpipe.config.schema_problems import NodeValidator, schema_problems

    evaluator = node.get("evaluator") if isinstance(node.get("evaluator"), str) else ""
    return schema_problems(NodeValidator(node_schema(evaluator, cls)), dict(node), base, "the data set")


def resolve_data_path(value: str, base_dir: str | FsPath | None = None) -> FsPath:
    """A shipped data set name (``stsb-dev``) → its file; a relative path → relative to ``base_dir`` when it exists
    there, else to the current directory."""
    if value in DATASETS:
        return dataset_file(value)
    p = FsPath(value).expanduser()
    if not p.is_absolute() and base_dir is not None and (FsPath(base_dir) / p).exists():
        return (FsPath(base_dir) / p).resolve()
    return p


def infer_evaluator(path: FsPath) -> str | None:
    """The evaluator a file's layout calls for: a directory with ``corpus.jsonl`` → retrieval; a table or JSONL
    whose header / first object has ``query`` and ``positive``/``negative``/``documents`` → reranking, one with
    two sentences and a ``score``/``label`` → sts; a shipped STS set → sts. None when the file does not tell.

    >>> infer_evaluator(dataset_file("stsb-dev")), infer_evaluator(FsPath("no-such-file.csv"))
    ('sts', None)
    """
    import csv
    import json

    if path.is_dir():
        return "retrieval" if (path / "corpus.jsonl").is_file() else None
    if not path.is_file():
        return None
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            first = next((ln for ln in (fh.readline() for _ in range(50)) if ln.strip()), "")[:100_000]
    except OSError:
        return None
    if path.suffix == ".jsonl":
        try:
            keys = set(json.loads(first))
        except (ValueError, TypeError):
            return None
    else:
        from stpipe.experiments.readers import STSB_COLUMNS

        cells = first.rstrip("\r\n").split("\t")
        try:
            if len(cells) >= STSB_COLUMNS and float(cells[4]) == float(cells[4]):
                return "sts"  # the STS Benchmark layout (tab-separated, no header, the score in column 5)
        except ValueError:
            pass
        keys = set(next(csv.reader([first], delimiter="\t" if path.suffix == ".tsv" else ","), []))
    if "query" in keys and keys & {"positive", "negative", "documents"}:
        return "reranking"
    if {"sentence1", "sentence2"} <= keys and keys & {"score", "label"}:
        return "sts"
    return None


def _own_file(node: dict[str, Any], srcs: Any) -> dict[str, Any]:
    """A data set whose ``path`` was overridden to the user's file: that file's evaluator (unless given), its
    layout (``format`` from its suffix) and its name, not the set's the override replaced."""
    from_override = str(srcs.get(("path",)) or "").startswith("override")
    if from_override:
        for key in ("name", "format"):
            if not str(srcs.get((key,)) or "").startswith("override"):
                node.pop(key, None)
    if "evaluator" not in node and isinstance(node.get("path"), str):
        found = "sts" if node["path"] in DATASETS else infer_evaluator(resolve_data_path(node["path"]))
        if found is not None:
            node["evaluator"] = found
    return node


def data_config_from(node: Any, *, sources: Mapping[Path, str] | None = None, base: Path = (DATA_GROUP,),
                     base_dir: str | FsPath | None = None) -> DataConfig:
    """Check a data node (a mapping, e.g. the composed ``data`` node) and resolve it into a :class:`DataConfig`.

    ``sources``: where each key came from (a :class:`stpipe.config.sources.SourceMap` keyed by paths inside the
    node); ``base``: the node's path in the whole configuration (problems are reported at ``data.path`` …).
    Raises :class:`ConfigError` (title "invalid data set") listing every problem; reads no data file."""
    from stpipe.config.sources import SourceMap
    from stpipe.experiments.evaluators import evaluator_class

    srcs = SourceMap(sources or {})

    def fail(problems: list[Problem]) -> ConfigError:
        shifted = [p if p.source else p.with_source(srcs.lookup(p.path[len(base):])) for p in problems]
        return ConfigError(shifted, title=TITLE)

    if not isinstance(node, Mapping):
        found = "nothing" if node is None else type(node).__name__
        raise fail([Problem(code="schema.type", path=base, message=f"a data set is a mapping, found {found}",
                            hint="choose one with data=<name> (conf/data/<name>.yaml), e.g. data=stsb-dev")])
    node = _own_file(dict(node), srcs)
    cls, problems = None, []
    if isinstance(node.get("evaluator"), str):
        try:
            cls = evaluator_class(node["evaluator"], path=base + ("evaluator",))
        except ConfigError as exc:
            problems.extend(exc.problems)
    schema = _schema_problems(node, cls, base)
    if "evaluator" not in node and isinstance(node.get("path"), str):
        schema = [p for p in schema if p.path != base + ("evaluator",)]
        problems.append(Problem(code="data.evaluator", path=base + ("evaluator",), message=f"cannot tell the "
                                f"evaluator from '{node['path']}' (its suffix, header or first object)",
                                expected="a .csv/.tsv/.jsonl of sentence1, sentence2, score (sts); a BEIR directory "
                                "with corpus.jsonl (retrieval); a .jsonl of query, positive, negative (reranking)",
                                hint="name it: data.evaluator=sts (or retrieval, reranking), and the columns with "
                                     "data.columns={sentence1: a, sentence2: b, score: s}"))
    problems.extend(schema)
    if problems:
        raise fail(problems)
    path = resolve_data_path(node["path"], base_dir)
    name = node.get("name") or (node["path"] if node["path"] in DATASETS else path.name)
    return DataConfig(evaluator=node["evaluator"], path=path, name=str(name), options=node, base=base,
                      source=srcs.lookup(()))


def load_data_config(name_or_node: str | FsPath | Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
                     *, base: Path = (DATA_GROUP,)) -> DataConfig:
    """A data config from a name of ``conf/data/`` (``stsb-dev``), a YAML file, or a mapping; ``overrides``
    (key → value) replace keys of the node. Problems name the YAML line they come from."""
    from stpipe.config.sources import SourceMap, load_yaml

    sources, base_dir = SourceMap(), None
    if isinstance(name_or_node, Mapping):
        node: Any = dict(name_or_node)
    else:
        f = FsPath(name_or_node)
        group = conf_dir() / DATA_GROUP
        if not f.is_file() and (group / f"{f}.yaml").is_file():
            f = group / f"{f}.yaml"
        elif not f.is_file():
            from stpipe.errors import did_you_mean

            names = sorted(p.stem for p in group.glob("*.yaml"))
            hint = did_you_mean(str(name_or_node), names)
            raise ConfigError([Problem(code="data.file", path=base, message=f"no data set named '{name_or_node}'",
                                       hint=((hint + " ") if hint else "") + "data sets: " + ", ".join(names))],
                              title=TITLE)
        node, sources = load_yaml(f)
        base_dir = f.parent
    if overrides and isinstance(node, dict):
        for key, value in overrides.items():
            node[key] = value
            sources.set_subtree((key,), f"override `{key}`")
    return data_config_from(node, sources=sources, base=base, base_dir=base_dir)


def collect(items: Iterable[Any], config: DataConfig) -> list[Problem]:
    """The problems among ``items`` (anything else is skipped), at most :data:`MAX_PROBLEMS` plus one summary."""
    out: list[Problem] = []
    extra = 0
    for item in items:
        if isinstance(item, Problem):
            if len(out) < MAX_PROBLEMS:
                out.append(item)
            else:
                extra += 1
    if extra:
        out.append(config.problem("data.more", f"… and {extra} more problem{'s' if extra != 1 else ''} like these",
                                  hint="fix the lines above and check again"))
    return out


def raise_problems(items: Iterator[Any], config: DataConfig) -> list[Any]:
    """The non-problem items of ``items``; a ConfigError listing the problems if there are any."""
    good: list[Any] = []
    bad: list[Problem] = []

    def split() -> Iterator[Any]:
        for item in items:
            if isinstance(item, Problem):
                yield item
            else:
                good.append(item)

    bad = collect(split(), config)
    if bad:
        raise ConfigError(bad, title=TITLE)
    return good


def check_data(config: DataConfig | Mapping[str, Any]) -> list[Problem]:
    """Every problem of the data set's file(s): missing file, missing columns, unparsable or out-of-range scores,
    malformed lines — each naming ``file:line``. Reads the data, loads no model. Empty when all is well."""
    if not isinstance(config, DataConfig):
        config = data_config_from(config)
    from stpipe.experiments.evaluators import evaluator_class

    return list(evaluator_class(config.evaluator).check_data(config))
