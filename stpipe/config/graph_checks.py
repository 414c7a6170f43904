"""The checks of one node of the graph walk (:mod:`stpipe.config.graph`) against the features that reach it.

:class:`Flow` is what the walk carries from node to node (each feature with its dimension and who produced it);
the functions here compare a node's declared inputs (``consumes``, ``requires_dim`` of its contract) with that
flow and add to the walk's problems: ``graph.not-input``, ``graph.missing-input``, ``graph.dim-mismatch`` (after
a Router whose routes disagree: per route) and ``graph.max-seq-length``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stpipe import registry
from stpipe.contracts.positions import max_positions
from stpipe.errors import Path, Problem, format_path
from stpipe.formats.model_files import Saved

#: what to suggest when a feature is missing (what to add, for the hint)
_PRODUCERS = {"token_embeddings": "a Transformer", "sentence_embedding": "a Pooling (after a Transformer)",
              "input_ids": "an input module such as a Transformer", "attention_mask": "a Transformer"}


@dataclass
class Flow:
    """The features available at one point of the graph."""

    features: dict[str, int | None] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # feature → who produced it (for messages)
    opaque: bool = False  # something unknown happened upstream: do not report missing inputs
    partial: dict[str, list[str]] = field(default_factory=dict)  # feature → routes that lack it
    routes: dict[str, tuple[Path, dict[str, int | None]]] = field(default_factory=dict)  # feature → (Router,
    # route → dim) where the routes of the Router before disagree
    unread: dict[str, Path] = field(default_factory=dict)  # a MUST_CONSUME feature → its producer, until read

    def copy(self) -> Flow:
        return Flow(dict(self.features), dict(self.origin), self.opaque, {k: list(v) for k, v in self.partial.items()},
                    dict(self.routes), dict(self.unread))


@dataclass
class TraceEntry:
    """One visited node (for ``explain``): path, registry name, what it produces, all features after it."""

    path: Path
    type: str
    features: dict[str, int | None]
    produced: dict[str, int | None] = field(default_factory=dict)


def dim_of(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def not_input(name: str, path: Path, later: list) -> Problem:
    """``graph.not-input`` at the first module; the hint names the first input module later in the sequence."""
    first_input = None
    for p, n in later:
        s = registry.find(n.get("type")) if isinstance(n, Mapping) and isinstance(n.get("type"), str) else None
        try:
            if s is not None and s.is_input():
                first_input = (p, s.name)
                break
        except Exception:
            continue
    hint = (f"move the {first_input[1]} at {format_path(first_input[0])} before the {name}" if first_input
            else f"place a Transformer (or another input module) before the {name}")
    return Problem(code="graph.not-input", path=path,
                   message=f"{name} cannot be the first module: it does not turn raw inputs into tensors",
                   expected="an input module (Transformer, StaticEmbedding, SparseStaticEmbedding, Router, …)",
                   found=name, hint=hint)


def check_inputs(problems: list[Problem], io: Any, name: str, path: Path, flow: Flow) -> None:
    """``graph.missing-input``: a feature the node reads that nothing upstream (or not every route) produces."""
    for key, param in dict(io.consumes).items():
        if key in flow.features or flow.opaque:
            continue
        where = path + (param,) if param else path
        lacking = flow.partial.get(key)
        if lacking:
            msg = f"{name} reads '{key}', which route{'s' if len(lacking) > 1 else ''} " \
                  f"{', '.join(repr(r) for r in lacking)} of the Router before it do not produce"
        else:
            msg = f"{name} reads '{key}', but nothing before it produces '{key}'"
        produced = ", ".join(sorted(flow.features)) or "nothing"
        hint = f"place {_PRODUCERS[key]} before the {name}" if key in _PRODUCERS else None
        if param and not hint:
            hint = f"check {param}; features available here: {produced}"
        problems.append(Problem(code="graph.missing-input", path=where, message=msg,
                                     expected=f"'{key}' from upstream", found=produced, hint=hint))


def check_dims(problems: list[Problem], io: Any, name: str, path: Path, flow: Flow,
               loaded: tuple[str, Saved, Mapping[str, Any]] | None = None) -> None:
    """``graph.dim-mismatch``: declared input dimensions against what arrives. ``loaded``: (load_from, saved
    params, explicit params) — a dimension the node takes from its saved folder is reported at ``load_from``."""
    for key, dim, param in list(io.requires_dim):
        up = flow.features.get(key)
        if dim_of(dim) is None:
            continue
        if up is None and key in flow.routes:
            _check_route_dims(problems, key, dim, param, name, path, flow)
            continue
        if up is None or up == dim:
            continue
        origin = flow.origin.get(key)
        lf, saved, explicit = loaded if loaded is not None else ("", None, {})
        if saved is not None and param and (param in saved.shapes or (param not in explicit
                                                                      and param in saved.params)):
            problems.append(Problem(
                code="graph.dim-mismatch", path=path + (param if param in explicit else "load_from",),
                message=f"{name} loaded from '{lf}' expects '{key}' of dimension {dim} ({param} of the saved "
                        f"module), but {up} arrives",
                expected=f"{dim}", found=f"{up}" + (f" ({origin})" if origin else ""),
                hint=f"make the modules before it produce {dim}, or load a module saved for {up}"))
            continue
        problems.append(Problem(
            code="graph.dim-mismatch", path=path + ((param,) if param else ()),
            message=f"{name} expects '{key}' of dimension {dim}, but {up} arrives",
            expected=f"{up}" + (f" ({origin})" if origin else ""), found=str(dim),
            hint=f"set {param}: {up}" if param else None))


def _check_route_dims(problems: list[Problem], key: str, dim: int, param: str, name: str, path: Path,
                      flow: Flow) -> None:
    router, dims = flow.routes[key]
    wrong = {r: d for r, d in dims.items() if d is not None and d != dim}
    if not wrong:
        return
    routes = " and ".join(repr(r) for r in wrong)
    shown = ", ".join(f"{r} → {d}" for r, d in wrong.items()) if len(wrong) > 1 else str(*wrong.values())
    problems.append(Problem(
        code="graph.dim-mismatch", path=path + ((param,) if param else ()),
        message=f"{name} expects '{key}' of dimension {dim}, but route{'s' if len(wrong) > 1 else ''} {routes} "
                f"of the Router at {format_path(router)} deliver{'' if len(wrong) > 1 else 's'} {shown}",
        expected=f"{dim} from every route", found=", ".join(f"{r} → {d}" for r, d in dims.items()),
        hint=f"end route{'s' if len(wrong) > 1 else ''} {routes} with a Dense projecting to {dim}"))


def check_positions(problems: list[Problem], ctx: Any, name: str, params: Mapping[str, Any], path: Path,
                    loaded: tuple[str, Saved, Mapping[str, Any]] | None) -> None:
    """``graph.max-seq-length``: a Transformer's ``max_seq_length`` must fit the learned positions of its model
    (config.json)."""
    msl, model = params.get("max_seq_length"), params.get("model_name_or_path")
    if name != "Transformer" or not isinstance(msl, int) or isinstance(msl, bool) or not isinstance(model, str):
        return
    hf = ctx.hf_config(model) if hasattr(ctx, "hf_config") else None
    limit = max_positions(hf)
    if limit is None or msl <= limit:
        return
    from_saved = loaded is not None and "max_seq_length" not in loaded[2]
    problems.append(Problem(
        code="graph.max-seq-length", path=path + ("load_from" if from_saved else "max_seq_length",),
        message=f"max_seq_length {msl} exceeds the {limit} positions '{model}' can embed",
        expected=f"at most {limit} (max_position_embeddings in its config.json)", found=str(msl),
        hint=f"set max_seq_length: {limit} (or less)"))
