"""Where every value of a model definition came from: ``file.yaml:line:col``, an override, a sweep point.

A :class:`SourceMap` maps a config path (a tuple, see :func:`stpipe.errors.format_path`) to a
human-readable source. :func:`parse_yaml` reads YAML with the same loader Hydra/OmegaConf use and records
the position of every key and list item, from the node marks of ``yaml.compose``:

>>> data, src = parse_yaml("modules:\\n  - type: Pooling\\n    pooling_mode: meen\\n", "m.yaml")
>>> src[("modules", 0, "pooling_mode")]
'm.yaml:3:5'
>>> src.lookup(("modules", 0, "pooling_mode", "deeper"))  # nearest known ancestor
'm.yaml:3:5'

A broken file raises a :class:`ConfigError` (``yaml.syntax``, ``yaml.duplicate-key``, ``yaml.not-found``,
``yaml.encoding``, ``yaml.not-a-file``) that names ``file:line:col``. Aliases may not expand a document beyond
MAX_ALIAS_VALUES values nor nest it beyond MAX_DEPTH levels (``yaml.alias-bomb``, ``yaml.too-deep``): checked on the
composed node graph, before anything is constructed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path as FsPath
from typing import Any

import yaml

from stpipe.contracts.pipeline import MAX_DEPTH as PIPELINE_MAX_DEPTH
from stpipe.errors import ConfigError, Path, PathPart, Problem


class SourceMap(dict[Path, str]):
    """Config path tuple → source string, with lookup of the nearest known ancestor."""

    def lookup(self, path: Sequence[PathPart]) -> str | None:
        """The source of ``path``, or of its nearest ancestor that has one (None if none has)."""
        p = tuple(path)
        while True:
            if p in self:
                return self[p]
            if not p:
                return None
            p = p[:-1]

    def set_subtree(self, path: Sequence[PathPart], source: str) -> None:
        """Mark ``path`` and everything below it as coming from ``source`` (e.g. an override)."""
        p = tuple(path)
        for k in [k for k in self if k[: len(p)] == p]:
            del self[k]
        self[p] = source

    def subtree(self, prefix: Sequence[PathPart]) -> SourceMap:
        """The entries under ``prefix``, re-rooted (``("model", "modules", 0)`` → ``("modules", 0)``)."""
        n = len(prefix)
        return SourceMap({k[n:]: v for k, v in self.items() if k[:n] == tuple(prefix)})

    def apply(self, problems: Iterable[Problem]) -> list[Problem]:
        """``problems`` with a source filled in wherever they have none yet."""
        return [p if p.source else p.with_source(self.lookup(p.path)) for p in problems]


@cache
def _loader_class() -> type:
    """The YAML loader OmegaConf (and so Hydra) uses: YAML 1.2-like floats, no timestamps, duplicate keys refused."""
    try:
        from omegaconf._utils import get_yaml_loader

        return get_yaml_loader()
    except Exception:  # pragma: no cover - omegaconf changed its private helper
        return yaml.SafeLoader


@cache
def _fast_loader_class() -> type | None:
    """:func:`_loader_class` with libyaml's parser (C) in place of PyYAML's: the same resolver and constructor (so
    the same values), ten times faster. None without libyaml."""
    try:
        from yaml.cyaml import CParser
    except ImportError:  # pragma: no cover - PyYAML built without libyaml
        return None
    base = _loader_class()

    class FastLoader(CParser, base):  # type: ignore[misc, valid-type]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    return FastLoader


#: bounds on one YAML document: values that aliases add (beyond those written in the file), and nesting depth
MAX_ALIAS_VALUES = 2_000  # a shared node repeated in a few routes is a few hundred; Hydra copies each value
MAX_DEPTH = PIPELINE_MAX_DEPTH  # the one depth limit (stpipe.contracts.pipeline)


def _expansion_problem(root: yaml.Node, filename: str) -> Problem | None:
    """A document whose aliases add more than MAX_ALIAS_VALUES values once expanded ("billion laughs") or that nests
    deeper than MAX_DEPTH: the problem, at the alias (or node) where the bound is crossed. An alias is the same node
    object as its anchor, so the expanded size of each node is computed once (linear in the file, not in the
    expansion); a large file without aliases is bounded by its size only."""
    size: dict[int, int] = {}

    def walk(node: yaml.Node, depth: int) -> int | Problem:
        if depth > MAX_DEPTH:
            return Problem(code="yaml.too-deep", path=(), source=_mark(filename, node.start_mark),
                           message=f"the YAML nests deeper than {MAX_DEPTH} levels",
                           hint="a model definition needs a few levels; flatten the structure")
        if id(node) in size:
            return size[id(node)]
        total = 1
        children = ([c for kv in node.value for c in kv] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        for child in children:
            n = walk(child, depth + 1)
            if isinstance(n, Problem):
                return n
            total += n
            if total > MAX_ALIAS_VALUES + len(size) + 1:  # more values than distinct nodes seen + the bound
                return Problem(code="yaml.alias-bomb", path=(), source=_mark(filename, child.start_mark),
                               message=f"the YAML's aliases (*name) expand to more than {MAX_ALIAS_VALUES:,} "
                                       "values", hint="an alias repeats its anchor's whole value; repeat less, or "
                                                      "write the values out")
        size[id(node)] = total
        return total

    result = walk(root, 0)
    return result if isinstance(result, Problem) else None


def _mark(filename: str, mark: Any) -> str:
    return f"{filename}:{mark.line + 1}:{mark.column + 1}"


def _record(node: yaml.Node, path: Path, loader: Any, filename: str, out: SourceMap, depth: int = 0) -> None:
    if depth > 200:  # pathological nesting (or alias cycles): stop recording, the data is still fine
        return
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            try:
                key = loader.construct_object(key_node, deep=True)
            except Exception:
                key = getattr(key_node, "value", None)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                key = str(key)
            out[path + (key,)] = _mark(filename, key_node.start_mark)
            _record(value_node, path + (key,), loader, filename, out, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[path + (i,)] = _mark(filename, item.start_mark)
            _record(item, path + (i,), loader, filename, out, depth + 1)


def parse_yaml(text: str, filename: str = "<string>") -> tuple[Any, SourceMap]:
    """Parse one YAML document; return the data and the source of every key and list item.

    Read with libyaml's parser when it is there; a document it does not read cleanly (any error, a bound
    crossed) is read again with PyYAML's, which Hydra uses, so that every error is the one Hydra would meet,
    said the same way."""
    fast = _fast_loader_class()
    if fast is not None:
        try:
            return _parse_with(fast, text, filename)
        except (ConfigError, yaml.YAMLError, RecursionError, ValueError):
            pass
    return _parse_with(_loader_class(), text, filename)


def _parse_with(loader_class: type, text: str, filename: str) -> tuple[Any, SourceMap]:
    loader = loader_class(text)
    loader.name = filename
    try:
        try:
            node = loader.get_single_node()
            bomb = _expansion_problem(node, filename) if node is not None else None
            if bomb is not None:
                raise ConfigError([bomb])
            data = loader.construct_document(node) if node is not None else None
        except RecursionError:
            raise ConfigError([Problem(code="yaml.too-deep", path=(), source=filename, message="the YAML nests "
                                       f"too deeply to read (more than {MAX_DEPTH} levels)")]) from None
        except yaml.MarkedYAMLError as exc:
            raise _yaml_error(exc, filename) from None
        except yaml.YAMLError as exc:
            raise ConfigError([Problem(code="yaml.syntax", path=(), message=f"invalid YAML: {exc}",
                                       source=filename)]) from None
        sources = SourceMap()
        if node is not None:
            sources[()] = _mark(filename, node.start_mark)
            _record(node, (), loader, filename, sources)
        return data, sources
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.MarkedYAMLError, filename: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    source = _mark(filename, mark) if mark is not None else filename
    problem = (exc.problem or "").strip()
    if problem.startswith("found duplicate key"):
        key = problem.removeprefix("found duplicate key").strip()
        return ConfigError([Problem(code="yaml.duplicate-key", path=(), message=f"duplicate key '{key}'",
                                    source=source, hint="each key may appear once in a mapping; remove one")])
    message = f"invalid YAML: {problem}" if problem else "invalid YAML"
    if exc.context:
        message += f" ({exc.context.strip()})"
    hint = "check the indentation and the ':' after each key; quote values that contain ': ' or start with '{' '['"
    return ConfigError([Problem(code="yaml.syntax", path=(), message=message, source=source, hint=hint)])


#: the largest YAML file stpipe reads (a model definition is a few KB)
MAX_FILE_BYTES = 16 * 1024 * 1024
#: what :func:`load_yaml` read: (name as given, resolved path, size, mtime) → (data, sources), handed out as copies
_READ: dict[tuple[str, str, int, int], tuple[Any, SourceMap]] = {}


def load_yaml(path: str | FsPath) -> tuple[Any, SourceMap]:
    """Read and parse a YAML file (see :func:`parse_yaml`). A missing or unreadable file is ``yaml.not-found``;
    something that is not a regular file (a device such as /dev/zero, a FIFO) or is larger than MAX_FILE_BYTES is
    ``yaml.not-a-file``; a file that is not UTF-8 text is ``yaml.encoding`` with its line."""
    filename = str(path)
    p = FsPath(path)
    try:
        if p.exists() and not p.is_file():
            what = "a directory" if p.is_dir() else "not a regular file"
            raise ConfigError([Problem(code="yaml.not-a-file", path=(), source=filename, message=f"the model file "
                                       f"is {what}", hint="give the path of a YAML model definition")])
        st = p.stat()
        if p.is_file() and st.st_size > MAX_FILE_BYTES:
            raise ConfigError([Problem(code="yaml.not-a-file", path=(), source=filename, message=f"the model file "
                                       f"is larger than {MAX_FILE_BYTES >> 20} MB; a model definition is a few KB")])
        key = (filename, str(p.resolve()), st.st_size, st.st_mtime_ns)
        if key in _READ:  # read already in this process (Hydra's reading, then the sources of a composition)
            data, sources = _READ[key]
            return copy.deepcopy(data), SourceMap(sources)
        raw = p.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([Problem(code="yaml.not-found", path=(), message=f"cannot read the model file: {reason}",
                                   source=filename, hint="give the path of a YAML model definition")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([Problem(code="yaml.encoding", path=(), source=f"{filename}:{line}",
                                   message=f"the file is not UTF-8 text (byte {raw[exc.start]:#04x})",
                                   hint="save the file as UTF-8")]) from None
    data, sources = parse_yaml(text, filename)
    if len(_READ) >= 256:
        _READ.clear()
    _READ[key] = copy.deepcopy(data), SourceMap(sources)
    return data, sources
