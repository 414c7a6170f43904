"""``validate``: a model definition (dict or YAML file) → the same plain dict, checked; ConfigError otherwise.

Three stages, all run, every problem collected (nothing here loads weights, and neither torch nor
transformers is imported: built-in types are described by their contracts, :mod:`stpipe.contracts`):

1. JSON Schema — :mod:`stpipe.config.schema`
2. semantic checks — :mod:`stpipe.config.checks`
3. graph checks — :mod:`stpipe.config.graph` (dimensions from each model's ``config.json``)

Errors raise one :class:`ConfigError` (warnings included in it, for context). Without errors, each
warning is emitted as a :class:`ConfigWarning` through :mod:`warnings`, and the plain dict is returned.
:func:`inspect_definition` returns everything (problems of both severities, the feature trace) without
raising, for callers such as ``stpipe validate`` that print warnings themselves.

>>> validate({"modules": [{"type": "Pooling", "pooling_mode": "mean"}]})
Traceback (most recent call last):
...
stpipe.errors.ConfigError: invalid model definition: 1 problem
error [graph.not-input] modules[0]: Pooling cannot be the first module: it does not turn raw inputs into tensors
    expected: an input module (Transformer, StaticEmbedding, SparseStaticEmbedding, Router, …)
    found: Pooling
    hint: place a Transformer (or another input module) before the Pooling
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from stpipe import registry
from stpipe.config import checks_templates  # noqa: F401  (registers check.chat-template)
from stpipe.config.checks import CheckContext, run_checks
from stpipe.config.checks_router import effective_default
from stpipe.config.graph import GraphContext, TraceEntry, walk_graph
from stpipe.config.schema import validate_schema, walk_nodes
from stpipe.config.sources import SourceMap, load_yaml
from stpipe.contracts.modality import normalize_modality
from stpipe.contracts.pipeline import MAX_DEPTH
from stpipe.contracts.router import mapping_rank
from stpipe.errors import ConfigError, ConfigWarning, Problem, ProblemList, format_path

_MAX_DEPTH = MAX_DEPTH


@dataclass
class Report(ProblemList):
    """Everything validation found: the plain definition, all problems, and the feature trace."""

    definition: Any
    problems: list[Problem] = field(default_factory=list)
    trace: list[TraceEntry] = field(default_factory=list)


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-like copy: mappings → dict, lists/tuples → list (OmegaConf containers resolved)."""
    if depth > _MAX_DEPTH:
        raise ConfigError([Problem(code="schema.depth", path=(), message=f"the definition is nested deeper than "
                                   f"{_MAX_DEPTH} levels (or refers to itself)")])
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(value, Mapping):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return value


def _stage(code: str, fn: Any, *args: Any) -> list[Problem]:
    try:
        return list(fn(*args))
    except ConfigError as exc:
        return list(exc.problems)
    except Exception as exc:  # never let a bug or an odd input escape as a raw traceback
        return [Problem(code=f"{code}.internal", path=(), message=f"{code} stage failed: {exc!r}",
                        hint="this is a bug in stpipe; please report it with your model definition")]


def inspect_definition(definition: Mapping[str, Any] | str | FsPath, *, sources: SourceMap | None = None,
                       base_dir: str | FsPath | None = None, ctx: Any = None) -> Report:
    """Run the three stages and return a :class:`Report`; raises ConfigError only for an unreadable file."""
    src = SourceMap()
    if isinstance(definition, (str, FsPath)):
        data, src = load_yaml(definition)
        base_dir = base_dir if base_dir is not None else FsPath(definition).resolve().parent
    else:
        data = definition
    src.update(sources or {})
    try:
        data = _plain(data)
    except ConfigError as exc:
        return Report(definition=None, problems=src.apply(exc.problems))
    except Exception as exc:
        return Report(definition=None, problems=[Problem(code="yaml.interpolation", path=(),
                                                         message=f"cannot resolve the definition: {exc}")])
    if ctx is None:
        ctx = GraphContext(base_dir=base_dir)
    problems = _stage("schema", validate_schema, data)
    problems += _stage("check", run_checks, data, CheckContext(base_dir=base_dir))
    trace: list[TraceEntry] = []
    try:
        graph_problems, trace = walk_graph(data, ctx, {p.path for p in problems})
    except Exception as exc:  # as in _stage, but the trace is needed too
        graph_problems = [Problem(code="graph.internal", path=(), message=f"graph stage failed: {exc!r}",
                                  hint="this is a bug in stpipe; please report it with your model definition")]
    problems += graph_problems
    return Report(definition=data, problems=src.apply(problems), trace=trace)


def validate(definition: Mapping[str, Any] | str | FsPath, *, sources: SourceMap | None = None,
             base_dir: str | FsPath | None = None, ctx: Any = None) -> dict[str, Any]:
    """Validate a model definition (a dict, or the path of a YAML file).

    Returns the definition as a plain dict. Raises one :class:`ConfigError` listing every problem (each
    with code, path, message, hint and source: ``file:line:col`` when read from YAML or given ``sources``)
    when there is at least one error; otherwise emits each warning as a :class:`ConfigWarning`.
    ``base_dir`` resolves relative paths in the definition (default: the YAML file's directory).
    ``ctx`` (optional) replaces the :class:`GraphContext` that reads ``config.json`` files.
    """
    report = inspect_definition(definition, sources=sources, base_dir=base_dir, ctx=ctx)
    if report.errors:
        raise ConfigError(report.problems)
    for p in report.warnings:
        warnings.warn(ConfigWarning(p), stacklevel=2)
    return report.definition


# --------------------------------------------------------------------------- explain
def _class_line(type_name: str) -> str:
    spec = registry.find(type_name)
    if spec is None:
        return f"{type_name}  (unknown type)"
    if isinstance(spec.target, type):  # registered from Python: already imported
        return f"{spec.name}  {spec.class_path}  ({inspect.getsourcefile(spec.target) or '?'})"
    module = spec.target.partition(":")[0]
    try:  # where the class is defined, without importing it (nor torch)
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        return f"{spec.name}  {spec.class_path}  (cannot find {module}: {exc})"
    return f"{spec.name}  {spec.class_path}  ({found.origin if found is not None else 'not installed'})"


def _fmt_features(features: Mapping[str, int | None]) -> str:
    return ", ".join(f"{k}[{v}]" if v is not None else k for k, v in sorted(features.items())) or "-"


def routing_table(node: Mapping[str, Any]) -> list[str]:
    """A Router node's routing rules in the order they are tried (sentence-transformers' priority)."""
    routes = [str(r) for r in node.get("sub_modules", {})] if isinstance(node.get("sub_modules"), Mapping) else []
    maps = [m for m in node.get("route_mappings") or [] if isinstance(m, Mapping)]

    lines = []
    for m in sorted(maps, key=lambda m: mapping_rank(m.get("task"), m.get("modality"))):
        mod = m.get("modality")
        mod = normalize_modality(mod) if isinstance(mod, (list, str)) else mod
        cond = " and ".join(f"{k}={v!r}" for k, v in (("task", m.get("task")), ("modality", mod)) if v is not None)
        lines.append(f"{cond or 'any input'} → {m.get('route')}")
    if routes:
        lines.append(f"task=<route name> → that route ({', '.join(routes)})")
        lines.append(f"modality=<route name> → that route ({', '.join(routes)})")
    default = effective_default(node)
    lines.append(f"otherwise → {default}" if default else "otherwise → error (no default route)")
    return [f"{i}. {line}" for i, line in enumerate(lines, 1)]


def explain(definition: Mapping[str, Any] | str | FsPath, *, base_dir: str | FsPath | None = None,
            ctx: Any = None) -> str:
    """Human-readable graph: each node's class and defining file, the features after it, each Router's
    routing table, then any problems (``stpipe validate --explain``). Never raises for bad content."""
    report = inspect_definition(definition, base_dir=base_dir, ctx=ctx)
    defn = report.definition if isinstance(report.definition, Mapping) else {}
    after = {t.path: t.produced for t in report.trace}
    out = []
    if defn:
        kind = defn.get('model_type') or 'SentenceTransformer'
        how = (f"activation: {defn.get('activation_fn') or 'default'}" if kind == "CrossEncoder" else
               f"similarity: {defn.get('similarity_fn_name') or 'default'}")
        out.append(f"model: {defn.get('name') or '(unnamed)'}  type: {kind}  {how}")
    for path, node in walk_nodes(defn.get("modules")):
        indent = "  " * (sum(1 for p in path if p == "sub_modules"))
        if "ref" in node:
            out.append(f"{indent}{format_path(path)}  → same instance as id '{node['ref']}'")
            continue
        t = node.get("type")
        out.append(f"{indent}{format_path(path)}  {_class_line(t) if isinstance(t, str) else '(no type)'}")
        if path in after:
            out.append(f"{indent}    → {_fmt_features(after[path])}")
        spec = registry.find(t) if isinstance(t, str) else None
        if spec is not None and spec.name == "Router":
            out.append(f"{indent}    routing (first match wins):")
            out.extend(f"{indent}      {line}" for line in routing_table(node))
    if report.problems:
        n = len(report.errors)
        out.append(f"{n} error{'s' if n != 1 else ''}, {len(report.warnings)} warning(s):")
        out.extend(p.render() for p in report.problems)
    else:
        out.append("valid")
    return "\n".join(out)
