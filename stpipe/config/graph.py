"""Stage 3 of validation: follow the features through every path of the graph, without loading weights.

The walk visits the top-level modules in order and every route of every Router. Each type is described
statically (``describe(params, upstream, ctx) -> FeatureIO``): a built-in by its torch-free contract
(:mod:`stpipe.contracts`, through :meth:`stpipe.registry.ModuleSpec.describe`; no module class is imported),
a third-party type by its class; dimensions start from the Hugging Face ``config.json`` that
:meth:`GraphContext.hf_config` reads — that file only, never weights. Problems:

* ``graph.not-input`` — the first module (of the pipeline, or of a route of a first-position Router)
  cannot turn raw inputs into tensors;
* ``graph.missing-input`` — a module reads a feature nothing upstream produces;
* ``graph.dim-mismatch`` — a declared dimension differs from what arrives (at the parameter's path; at
  ``load_from`` when the dimension comes from the saved folder); after a Router whose routes disagree, each
  route's dimension is compared;
* ``graph.route-dims`` — (a warning, as in sentence-transformers) the routes of one Router end in different
  ``sentence_embedding`` sizes;
* ``graph.max-seq-length`` — a Transformer's ``max_seq_length`` exceeds the positions its config.json allows;
* ``graph.load-from`` — a ``load_from`` folder cannot be read, or its weights contradict the node's params;
* ``graph.no-output`` / ``graph.unconsumed`` — the pipeline never produces what its model type returns
  (``sentence_embedding``; a CrossEncoder's ``scores``), or a task output nothing reads reaches the end of a path
  (a causal Transformer's ``causal_logits`` that no LogitScore / Pooling reads, a classifier's ``scores`` in an
  embedding model) (:mod:`stpipe.config.graph_output`);
* ``graph.undescribable`` — a (third-party) type without a contract whose class cannot be imported: the walk
  cannot follow the features through it, and says so instead of skipping it.

A node with ``load_from`` is described with its saved parameters (:mod:`stpipe.formats.model_files`: the saved
config and tensor shapes, never weights) under the params the node sets, as the builder loads it. The walk is
here; the checks of one node against the features that reach it are in :mod:`stpipe.config.graph_checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path as FsPath
from typing import Any

from stpipe import registry
from stpipe.config.graph_checks import Flow, TraceEntry, check_dims, check_inputs, check_positions, dim_of, not_input
from stpipe.config.graph_output import MUST_CONSUME, output_problems
from stpipe.contracts.pipeline import NODE_KEYS
from stpipe.errors import ConfigError, Path, Problem, format_path
from stpipe.formats.model_files import GraphContext, Saved, saved_params, shape_conflicts
from stpipe.resources import resolve_model_path

__all__ = ["GraphContext", "Flow", "TraceEntry", "walk_graph", "check_graph"]


class _Walker:
    def __init__(self, ctx: GraphContext, skip: set[Path]) -> None:
        self.ctx, self.skip = ctx, skip
        self.problems: list[Problem] = []
        self.ids: dict[str, Mapping[str, Any]] = {}
        self.walking: set[int] = set()  # the Routers being walked (a ref to one of them would recurse)
        self.trace: list[TraceEntry] = []
        self.saved_cache: dict[tuple[str, str], Saved | None] = {}

    # ------------------------------------------------------------------ sequences
    def sequence(self, nodes: Any, base: Path, flow: Flow, at_input: bool) -> Flow:
        if not isinstance(nodes, list):
            flow.opaque = True
            return flow
        for i, node in enumerate(nodes):
            later = [(base + (j,), n) for j, n in enumerate(nodes) if j > i]
            flow = self.node(node, base + (i,), flow, at_input and i == 0, later)
        return flow

    def node(self, node: Any, path: Path, flow: Flow, at_input: bool, later: list) -> Flow:
        if not isinstance(node, Mapping):
            flow.opaque = True
            return flow
        if "ref" in node:
            target = self.ids.get(node["ref"]) if isinstance(node["ref"], str) else None
            if target is None or id(target) in self.walking:  # a Router's route naming the Router: check.ref-cycle
                flow.opaque = True
                return flow
            node = target
        elif isinstance(node.get("id"), str):
            self.ids.setdefault(node["id"], node)
        spec = registry.find(node["type"]) if isinstance(node.get("type"), str) else None
        if spec is None:
            flow.opaque = True
            return flow
        if spec.name == "Router":
            self.walking.add(id(node))
            try:
                return self.router(node, path, flow, at_input)
            finally:
                self.walking.discard(id(node))
        try:
            is_input = spec.is_input()  # a built-in's contract; a third-party type's class
        except Exception as exc:  # never skip silently: what follows cannot be checked
            self._undescribable(spec, path, exc)
            flow.opaque = True
            return flow
        if at_input and not is_input:
            self.problems.append(not_input(spec.name, path, later))
        explicit = {k: v for k, v in node.items() if k not in NODE_KEYS}
        saved = self.saved(spec, node, path)
        params = {**saved.params, **explicit} if saved is not None else explicit
        io = self.describe(spec, params, flow, path)
        if io is None:
            flow.opaque = True
            return flow
        if not is_input and not at_input:
            check_inputs(self.problems, io, spec.name, path, flow)
        loaded = (node["load_from"], saved, explicit) if saved is not None else None
        check_dims(self.problems, io, spec.name, path, flow, loaded)
        check_positions(self.problems, self.ctx, spec.name, params, path, loaded)
        before = dict(flow.features)
        for key in dict(io.consumes):
            flow.unread.pop(key, None)
        for key in dict(io.produces):
            if key in MUST_CONSUME:
                flow.unread[key] = path
        for key, dim in dict(io.produces).items():
            flow.features[key] = dim_of(dim)
            flow.origin[key] = self._origin(key, dim_of(dim), spec.name, path, params, io, before, flow.origin)
            flow.partial.pop(key, None)
            if dim_of(dim) is not None or key not in dict(io.consumes):  # a pass-through keeps the routes' dims
                flow.routes.pop(key, None)
        if is_input:
            flow.opaque = False
        self.trace.append(TraceEntry(path, spec.name, dict(flow.features),
                                     {k: flow.features[k] for k in dict(io.produces)}))
        return flow

    def describe(self, spec: registry.ModuleSpec, params: dict[str, Any], flow: Flow, path: Path) -> Any:
        try:
            io = spec.describe(params, dict(flow.features), self.ctx)
        except ConfigError as exc:
            self.problems.extend(p if p.path[:1] == ("modules",) else replace(p, path=path + p.path)
                                 for p in exc.problems)
            return None
        except ImportError as exc:  # a third-party class that cannot be imported
            self._undescribable(spec, path, exc)
            return None
        except Exception as exc:
            if not any(s[: len(path)] == path for s in self.skip):  # else: the schema already said why
                self.problems.append(Problem(code="graph.describe-failed", path=path, message=f"cannot describe "
                                             f"this {spec.name}: {exc}", hint="check the module's parameters"))
            return None
        return io

    def _undescribable(self, spec: registry.ModuleSpec, path: Path, exc: Exception) -> None:
        """The graph cannot follow the features through this node: an error, never a silent skip (unless the
        schema stage already reported the failed import at ``type``)."""
        if path + ("type",) in self.skip:
            return
        self.problems.append(Problem(code="graph.undescribable", path=path + ("type",),
                       message=f"cannot check the features through this {spec.name}: importing "
                               f"{spec.class_path} failed ({type(exc).__name__}: {exc})",
                       hint="install the package that provides it, or give the type a contract"))

    def saved(self, spec: registry.ModuleSpec, node: Mapping[str, Any], path: Path) -> Saved | None:
        """The saved parameters of the node's ``load_from`` folder (None: no folder, or reported elsewhere)."""
        lf = node.get("load_from")
        if not isinstance(lf, str) or not lf or path + ("load_from",) in self.skip:
            return None
        folder = resolve_model_path(lf, getattr(self.ctx, "base_dir", None))
        if not FsPath(folder).is_dir():
            return None  # check.load-from reports it
        name = spec.name
        key = (name, folder)
        if key not in self.saved_cache:
            try:
                self.saved_cache[key] = saved_params(spec, folder)
            except Exception as exc:  # a malformed config file or safetensors header: build would fail too
                self.saved_cache[key] = None
                self.problems.append(Problem(
                    code="graph.load-from", path=path + ("load_from",), message=f"cannot read the saved {name} in "
                    f"'{lf}': {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                    hint=f"is '{lf}' a folder saved by a {name}? (its config file must be valid JSON)"))
                return None
        saved = self.saved_cache[key]
        for param, given, value, where in shape_conflicts(node, saved) if saved else ():
            self.problems.append(Problem(
                code="graph.load-from", path=path + (param,), message=f"{param} {given} contradicts the weights "
                f"saved in '{lf}' ({where})", expected=str(value), found=str(given),
                hint=f"remove {param} (the saved weights fix it), or load another folder"))
        return saved

    @staticmethod
    def _origin(key: str, dim: int | None, name: str, path: Path, params: Mapping[str, Any], io: Any,
                before: Mapping[str, int | None], origins: Mapping[str, str]) -> str:
        """Where a dimension comes from: a config.json, passed on unchanged by later modules."""
        here = f"the {name} at {format_path(path)}"
        model = params.get("model_name_or_path")
        if isinstance(model, str) and dim is not None:
            return f"read from the config.json of '{model}' by {here}"
        for k in dict(io.consumes):  # same size as an input: name the input's origin
            src = origins.get(k, "")
            if dim is not None and before.get(k) == dim and src.startswith("read from"):
                return src if ", through " in src else f"{src}, through {here}"
        return f"{key} of {here}"

    # ------------------------------------------------------------------ Router
    def router(self, node: Mapping[str, Any], path: Path, flow: Flow, at_input: bool) -> Flow:
        routes = node.get("sub_modules")
        if not isinstance(routes, Mapping) or not routes:
            flow.opaque = True  # loaded from disk, or malformed (reported by the schema)
            return flow
        ends: dict[str, Flow] = {}
        for route, children in routes.items():
            if isinstance(children, list) and children:
                ends[str(route)] = self.sequence(children, path + ("sub_modules", route), flow.copy(), at_input)
        if not ends:
            flow.opaque = True
            return flow
        dims = {r: f.features.get("sentence_embedding") for r, f in ends.items()}
        known = {r: d for r, d in dims.items() if d is not None}
        if len(set(known.values())) > 1:  # sentence-transformers only logs it: a warning
            shown = ", ".join(f"{r} → {d}" for r, d in known.items())
            self.problems.append(Problem(
                code="graph.route-dims", path=path + ("sub_modules",), severity="warning",
                message=f"the routes end in different sentence_embedding dimensions ({shown}); embeddings of "
                        "different routes cannot be compared",
                expected="the same dimension on every route", found=shown,
                hint="add a Dense at the end of a route to project it to the others' dimension"))
        merged = Flow(opaque=any(f.opaque for f in ends.values()),
                      unread={k: p for f in ends.values() for k, p in f.unread.items()})
        all_keys = {k for f in ends.values() for k in f.features}
        for key in all_keys:
            have = [r for r, f in ends.items() if key in f.features]
            if len(have) == len(ends):
                vals = {f.features[key] for f in ends.values()}
                merged.features[key] = next(iter(vals)) if len(vals) == 1 else None
                if len(vals - {None}) > 1:
                    merged.routes[key] = (path, {r: f.features[key] for r, f in ends.items()})
                merged.origin[key] = f"{key} of the Router at {format_path(path)}"
            else:
                merged.partial[key] = [r for r in ends if r not in have]
        self.trace.append(TraceEntry(path, "Router", dict(merged.features), dict(merged.features)))
        return merged


def walk_graph(definition: Any, ctx: GraphContext | None = None,
               skip: set[Path] | None = None) -> tuple[list[Problem], list[TraceEntry]]:
    """Walk the whole graph; return its problems and the trace of visited nodes (see :func:`check_graph`)."""
    if not isinstance(definition, Mapping) or not isinstance(definition.get("modules"), list):
        return [], []
    w = _Walker(ctx or GraphContext(), skip or set())
    end = w.sequence(definition["modules"], ("modules",), Flow(), at_input=True)
    if not end.opaque:  # the feature the model type returns (sentence_embedding, a CrossEncoder's scores)
        w.problems.extend(output_problems(definition, end.features, w.trace, end.unread))
    return w.problems, w.trace


def check_graph(definition: Any, ctx: GraphContext | None = None, skip: set[Path] | None = None) -> list[Problem]:
    """Stage 3: the graph problems of ``definition``. ``skip``: paths that already have schema problems
    (a module that cannot describe itself there is not reported twice)."""
    return walk_graph(definition, ctx, skip)[0]
