"""Stage 2 of validation: small semantic checks that a JSON Schema cannot express.

Each check is a function registered with :func:`check` under a stable code; it receives the definition
(already schema-checked, but it must tolerate anything: a check skips values of the wrong shape, the
schema stage has reported them) and a :class:`CheckContext`, and yields :class:`Problem` objects.
Checks run, and report, in registration order: ids and references, the Router checks
(:mod:`stpipe.config.checks_router`, imported at the bottom of this module), then module options,
prompts, the files a node names (:mod:`stpipe.config.checks_files`) and shapes.

>>> defn = {"modules": [{"type": "Router", "sub_modules": {"query": [], "document": []},
...                      "default_route": "documnet"}]}
>>> [(p.code, p.path_str, p.hint) for p in run_checks(defn) if p.code == "check.default-route"]
[('check.default-route', 'modules[0].default_route', "did you mean 'document'? available routes: query, document")]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from stpipe import registry
from stpipe.config.schema import walk_nodes
from stpipe.contracts.dense import activation_class
from stpipe.contracts.transformer import DTYPE_NAMES, TASKS
from stpipe.errors import Path, Problem, did_you_mean, format_path

CheckFn = Callable[[Mapping[str, Any], "CheckContext"], Iterable[Problem]]
CHECKS: dict[str, CheckFn] = {}


@dataclass
class CheckContext:
    """What checks may use besides the definition: the directory relative paths are resolved against."""

    base_dir: str | FsPath | None = None
    nodes: list[tuple[Path, Mapping[str, Any]]] = field(default_factory=list)


def check(code: str, *, before: str | None = None) -> Callable[[CheckFn], CheckFn]:
    """Register a check under ``code`` (the code of the problems it usually yields); it runs after the checks
    registered so far, or just before the check ``before`` when that one is already registered."""

    def deco(fn: CheckFn) -> CheckFn:
        if before in CHECKS and code not in CHECKS:
            items = list(CHECKS.items())
            at = list(CHECKS).index(before)
            CHECKS.clear()
            CHECKS.update([*items[:at], (code, fn), *items[at:]])
        else:
            CHECKS[code] = fn
        return fn

    return deco


def run_checks(definition: Any, ctx: CheckContext | None = None) -> list[Problem]:
    """Run every registered check; a check that crashes is reported (``check.internal``), never raised."""
    if not isinstance(definition, Mapping):
        return []
    ctx = ctx or CheckContext()
    ctx.nodes = list(walk_nodes(definition.get("modules")))
    problems: list[Problem] = []
    for code, fn in CHECKS.items():
        try:
            problems.extend(fn(definition, ctx))
        except Exception as exc:  # a bug in a check must not hide the other problems
            problems.append(Problem(code="check.internal", path=(), message=f"check '{code}' failed: {exc!r}",
                                    hint="this is a bug in stpipe; please report it with your model definition"))
    return problems


# --------------------------------------------------------------------------- helpers
def nodes_of_type(ctx: CheckContext, name: str) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    """Nodes whose type resolves to the registered type ``name``."""
    for path, node in ctx.nodes:
        t = node.get("type")
        if isinstance(t, str) and "ref" not in node:
            s = registry.find(t)
            if s is not None and s.name == name:
                yield path, node


# --------------------------------------------------------------------------- ids and references
@check("check.duplicate-id")
def unique_ids(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    seen: dict[str, Path] = {}
    for path, node in ctx.nodes:
        i = node.get("id")
        if isinstance(i, str) and "ref" not in node:
            if i in seen:
                yield Problem(code="check.duplicate-id", path=path + ("id",), message=f"id '{i}' is used twice",
                              hint=f"first declared at {format_path(seen[i])}; to reuse that module write "
                                   f"{{ref: {i}}} instead of a second node")
            else:
                seen[i] = path


@check("check.unknown-ref")
def refs_resolve(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    declared: dict[str, Path] = {}
    for path, node in ctx.nodes:
        if "ref" in node:
            ref = node["ref"]
            if not isinstance(ref, str):
                continue
            if ref in declared:
                target = declared[ref]
                if path[: len(target)] == target:
                    yield Problem(code="check.ref-cycle", path=path + ("ref",),
                                  message=f"'{ref}' refers to the Router that contains it",
                                  hint="a route cannot contain its own Router")
                continue
            later = [p for p, n in ctx.nodes if n.get("id") == ref and "ref" not in n]
            if later:
                yield Problem(code="check.ref-order", path=path + ("ref",),
                              message=f"'{ref}' is declared later, at {format_path(later[0])}",
                              hint="a reference must come after the node it refers to; move the node with "
                                   f"id: {ref} before this reference")
            else:
                ids = [p for p in declared]
                close = did_you_mean(ref, ids)
                yield Problem(code="check.unknown-ref", path=path + ("ref",), message=f"no node has id '{ref}'",
                              hint=(close + " " if close else "") + ("declared ids: " + ", ".join(ids) if ids
                                                                     else "no node declares an id"))
        elif isinstance(node.get("id"), str):
            declared.setdefault(node["id"], path)


# --------------------------------------------------------------------------- module options
def _task_feature(task: Any) -> str | None:
    """The feature a Transformer of this task writes when no modality_config says otherwise."""
    return TASKS[task][2] if isinstance(task, str) and task in TASKS else None


@check("check.options")
def option_combinations(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    """Options that need, or exclude, another option of the same node."""
    rules = [("Transformer", "modality_config", "module_output_name", True,
              "add module_output_name (e.g. token_embeddings) next to modality_config"),
             ("Dense", "init_bias", "bias", True, "remove init_bias, or set bias: true"),
             ("SparseStaticEmbedding", "path", "weight", False, "give either weight or path (an IDF JSON file)")]
    for path, node in nodes_of_type(ctx, "Transformer"):  # without modality_config the output name is the task's own
        out, task = node.get("module_output_name"), node.get("transformer_task", "feature-extraction")
        default = _task_feature(task)
        if isinstance(out, str) and node.get("modality_config") is None and default and out not in (
                default, "sentence_embedding"):
            yield Problem(code="check.options", path=path + ("module_output_name",),
                          message=f"module_output_name '{out}' needs a modality_config that produces it",
                          expected=f"'{default}' (what a {task} Transformer writes) or a modality_config",
                          found=repr(out), hint=f"remove module_output_name, or set it to {default}")
    for type_name, key, other, needed, hint in rules:
        for path, node in nodes_of_type(ctx, type_name):
            if node.get(key) is None:
                continue
            if needed and node.get(other, True if other == "bias" else None) in (None, False, ""):
                yield Problem(code="check.options", path=path + (key,), message=f"{key} needs {other}", hint=hint)
            elif not needed and node.get(other) is not None:
                yield Problem(code="check.options", path=path + (key,), message=f"{key} and {other} exclude each "
                              "other", hint=hint)


@check("check.deprecated")
def deprecated_params(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    """Parameters a built-in still accepts but that are deprecated (its contract's ``deprecated``): a warning."""
    for path, node in ctx.nodes:
        spec = registry.find(node["type"]) if isinstance(node.get("type"), str) and "ref" not in node else None
        contract = spec.contract if spec is not None else None
        for keys, hint in contract.deprecated(node) if contract is not None and contract.deprecated else ():
            yield Problem(code="check.deprecated", path=path + (keys[0],), severity="warning",
                          message=f"{', '.join(keys)} {'is' if len(keys) == 1 else 'are'} deprecated",
                          found=", ".join(f"{k}: {node[k]!r}" for k in keys), hint=hint)


@check("check.activation")
def activation_names(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    for path, node in nodes_of_type(ctx, "Dense"):
        act = node.get("activation_function")
        if isinstance(act, str):
            try:
                activation_class(act)  # the names the runtime's resolve_activation accepts
            except ValueError as exc:
                msg, _, hint = str(exc).partition("; ")
                yield Problem(code="check.activation", path=path + ("activation_function",), message=msg,
                              found=repr(act), hint=hint or None)


@check("check.remote-code")
def remote_code_is_explicit(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    if defn.get("trust_remote_code") is True:
        return
    for path, node in nodes_of_type(ctx, "Transformer"):
        for key in ("model_kwargs", "processor_kwargs", "config_kwargs"):
            kw = node.get(key)
            if isinstance(kw, Mapping) and kw.get("trust_remote_code") is True:
                yield Problem(code="check.remote-code", path=path + (key, "trust_remote_code"),
                              message="remote code is requested here but the model definition does not allow it",
                              hint="set trust_remote_code: true at the top of the model definition if you trust "
                                   "the model's code")


def _dtype_names() -> list[str]:
    """The dtype names the Transformer accepts in model_kwargs (the contract's table, so validation agrees with
    build)."""
    return ["auto", *DTYPE_NAMES]


@check("check.dtype")
def dtype_names(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    for path, node in nodes_of_type(ctx, "Transformer"):
        kw = node.get("model_kwargs")
        if not isinstance(kw, Mapping):
            continue
        for key in ("torch_dtype", "dtype"):
            v = kw.get(key)
            names = _dtype_names()
            if isinstance(v, str) and v.removeprefix("torch.") not in names:
                yield Problem(code="check.dtype", path=path + ("model_kwargs", key),
                              message=f"'{v}' is not a supported dtype", found=repr(v),
                              expected="one of: " + ", ".join(names),
                              hint=did_you_mean(v.removeprefix("torch."), names))


@check("check.default-prompt")
def default_prompt_exists(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    name = defn.get("default_prompt_name")
    prompts = defn.get("prompts")
    names = [str(k) for k in prompts] if isinstance(prompts, Mapping) else []
    if isinstance(name, str) and name not in names:
        close = did_you_mean(name, names)
        avail = "defined prompts: " + ", ".join(names) if names else "no prompts are defined"
        yield Problem(code="check.default-prompt", path=("default_prompt_name",),
                      message=f"default_prompt_name '{name}' is not in prompts", found=repr(name),
                      hint=f"{close} {avail}" if close else f"{avail}; add it under prompts:")


@check("check.model-type")
def model_type_keys(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    """truncate_dim belongs to a SentenceTransformer, max_active_dims to a SparseEncoder (the other one would be
    silently ignored)."""
    kind = defn.get("model_type", "SentenceTransformer")
    if kind == "SparseEncoder" and defn.get("truncate_dim") is not None:
        yield Problem(code="check.model-type", path=("truncate_dim",), message="a SparseEncoder does not use "
                      "truncate_dim", found=repr(defn["truncate_dim"]), expected="no truncate_dim (or null)",
                      hint="to limit a sparse embedding, set max_active_dims (how many non-zero dimensions to keep)")
    if kind in (None, "SentenceTransformer") and defn.get("max_active_dims") is not None:
        yield Problem(code="check.model-type", path=("max_active_dims",), message="max_active_dims only applies "
                      "to a SparseEncoder", found=repr(defn["max_active_dims"]),
                      hint="set model_type: SparseEncoder, or use truncate_dim to shorten dense embeddings")


@check("check.static-dims")
def static_embedding_dims(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    for path, node in nodes_of_type(ctx, "StaticEmbedding"):
        w, dim = node.get("embedding_weights"), node.get("embedding_dim")
        if "load_from" in node:
            continue
        if w is None and dim is None:
            yield Problem(code="check.static-dims", path=path + ("embedding_dim",),
                          message="StaticEmbedding needs embedding_dim or embedding_weights",
                          hint="set embedding_dim for random weights, or load_from a saved StaticEmbedding")
        elif isinstance(w, list) and w and isinstance(w[0], list) and isinstance(dim, int) and len(w[0]) != dim:
            yield Problem(code="check.static-dims", path=path + ("embedding_dim",),
                          message="embedding_dim does not match the width of embedding_weights",
                          expected=str(len(w[0])), found=str(dim))


@check("check.init-shape")
def dense_init_shapes(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    for path, node in nodes_of_type(ctx, "Dense"):
        n_in, n_out = node.get("in_features"), node.get("out_features")
        w, b = node.get("init_weight"), node.get("init_bias")
        if isinstance(w, list) and isinstance(n_in, int) and isinstance(n_out, int):
            rows_ok = len(w) == n_out and all(isinstance(r, list) and len(r) == n_in for r in w)
            if not rows_ok:
                yield Problem(code="check.init-shape", path=path + ("init_weight",),
                              message="init_weight has the wrong shape", expected=f"{n_out} rows of {n_in} numbers",
                              hint="init_weight is (out_features × in_features)")
        if isinstance(b, list) and isinstance(n_out, int) and len(b) != n_out:
            yield Problem(code="check.init-shape", path=path + ("init_bias",), message="init_bias has the wrong "
                          "length", expected=f"{n_out} numbers (out_features)", found=f"{len(b)} numbers")


# --------------------------------------------------------------------------- Router checks
# At the bottom: these modules import the registry above (checks_router registers its checks before check.options,
# checks_files its file checks before check.static-dims).
from stpipe.config import checks_cross_encoder, checks_files, checks_router  # noqa: E402, F401, I001
