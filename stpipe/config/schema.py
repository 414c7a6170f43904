"""Stage 1 of validation: JSON Schema (draft 2020-12), one mistake → one :class:`Problem` with its full path.

``schemas/pipeline.schema.json`` checks the skeleton (top-level keys, ``modules`` is a list of mappings);
each node is then checked *in code* against its own type's schema ``schemas/modules/<Name>.schema.json``
(``additionalProperties: false``), recursing into Router routes. This avoids the ``oneOf``/``if-then`` traps
(vague or duplicated errors) and keeps paths like ``modules[0].sub_modules.query[1].in_features``.

A module type registered from Python without a schema file may carry a class attribute ``schema`` (a
JSON Schema dict for its parameters; the node keys ``type``/``id``/``load_from`` are added); without one,
the schema is derived from its ``__init__`` signature (:func:`derived_schema`: the parameter names, required
= no default, simple types from evident annotations; a ``**kwargs`` constructor accepts any further keys).
A schema may add the keyword ``x-hint`` (a hint shown with its errors).

>>> [p.code for p in validate_schema({"modules": [{"type": "Pooling", "pooling_mode": "meen"}]})]
['schema.enum']
>>> validate_schema({"modules": [{"type": "Pooling", "poolng_mode": "mean"}]})[0].hint
"did you mean 'pooling_mode'?"
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from stpipe import registry
from stpipe.config.schema_derived import NODE_KEYS, derived_schema  # noqa: F401 - NODE_KEYS re-exported
from stpipe.errors import ConfigError, Path, Problem, did_you_mean
from stpipe.resources import schemas_dir

#: the node keys every module schema accepts (a test checks the files under schemas/modules/ agree)
NODE_KEY_SCHEMAS: dict[str, dict[str, Any]] = {
    "type": {"type": "string"}, "id": {"type": "string", "minLength": 1},
    "load_from": {"type": "string", "minLength": 1},
}
def _strict_integer(checker: Any, instance: Any) -> bool:
    """JSON Schema counts 32.0 as an integer; the constructors do not (``max_seq_length: 1e9`` must not pass)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


#: draft 2020-12, with "integer" meaning a Python int (what the modules accept)
NodeValidator = validators.extend(
    Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer))
_JSON_NAMES = {"object": "mapping", "array": "list", "null": "null", "string": "string", "integer": "integer",
               "number": "number", "boolean": "boolean"}
_LOOSE_NODE = {"type": "object", "x-hint": "a module node is a mapping {type: <name>, …} or a reference {ref: <id>}"}


@cache
def load_schema(relpath: str) -> dict[str, Any]:
    """A schema file under ``schemas/`` (cached; do not mutate)."""
    return json.loads((schemas_dir() / relpath).read_text(encoding="utf-8"))


def pipeline_schema() -> dict[str, Any]:
    """``schemas/pipeline.schema.json`` as published (its nodes reference ``modules/<Name>.schema.json``)."""
    return copy.deepcopy(load_schema("pipeline.schema.json"))


def module_schema(spec: registry.ModuleSpec) -> dict[str, Any] | None:
    """The JSON Schema of one module type's node: its schema file, its ``schema`` attribute, or one derived from
    its constructor; None when nothing is known (anything goes)."""
    path = schemas_dir() / spec.schema_file
    if path.is_file():
        return copy.deepcopy(load_schema(spec.schema_file))
    declared = getattr(spec.cls, "schema", None)
    if not isinstance(declared, Mapping):
        declared = derived_schema(spec.cls, spec.name)
    if declared is None:
        return None
    schema = copy.deepcopy(dict(declared))
    schema.setdefault("type", "object")
    props = schema.setdefault("properties", {})
    for key, sub in NODE_KEY_SCHEMAS.items():
        props.setdefault(key, dict(sub))
    schema.setdefault("title", spec.name)
    return schema


@cache
def _skeleton_validator() -> Draft202012Validator:
    schema = pipeline_schema()
    schema["$defs"]["node"] = _LOOSE_NODE
    return NodeValidator(schema)


@cache
def _file_validator(name: str) -> Draft202012Validator:
    return _validator_for(copy.deepcopy(load_schema(f"modules/{name}.schema.json")))


def _validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    # children of a Router are validated by walk_nodes, each against its own type, so here a node is loose
    schema.setdefault("$defs", {})["node"] = _LOOSE_NODE
    return NodeValidator(schema)


def _node_validator(spec: registry.ModuleSpec) -> Draft202012Validator | None:
    if (schemas_dir() / spec.schema_file).is_file():
        return _file_validator(spec.name)
    schema = module_schema(spec)
    return None if schema is None else _validator_for(schema)


# --------------------------------------------------------------------------- error translation
def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _join(hints: list[str | None]) -> str | None:
    hints = [h for h in hints if h]
    return "; ".join(hints) if hints else None


def _translate(err: ValidationError, base: Path, title: str | None) -> Iterator[Problem]:
    path = base + tuple(err.absolute_path)
    where = f" for {title}" if title else ""
    x_hint = err.schema.get("x-hint") if isinstance(err.schema, Mapping) else None
    v, inst = err.validator, err.instance
    if "propertyNames" in err.relative_schema_path:  # inst is the offending key itself
        key = inst
        if v == "enum":
            allowed = [str(a) for a in err.validator_value]
            yield Problem(code="schema.unknown-key", path=path + (key,), message=f"unknown key '{key}'{where}",
                          expected="one of: " + ", ".join(allowed), hint=did_you_mean(str(key), allowed) or x_hint)
        else:
            yield Problem(code="schema.key-name", path=path + (key,), message=f"invalid key {_short(key)}{where}",
                          expected=f"a key matching {err.validator_value}" if v == "pattern" and not x_hint else None,
                          hint=x_hint or err.message)
    elif v == "additionalProperties" and isinstance(inst, Mapping):
        props = err.schema.get("properties", {})
        # deprecated keys are accepted (with a warning) but never suggested
        allowed = [k for k, sub in props.items() if not (isinstance(sub, Mapping) and sub.get("deprecated"))]
        for key in [k for k in inst if k not in props]:
            yield Problem(code="schema.unknown-key", path=path + (key,), message=f"unknown key '{key}'{where}",
                          expected="one of: " + ", ".join(allowed) if allowed else "no keys",
                          hint=did_you_mean(str(key), allowed) or x_hint)
    elif v == "required" and isinstance(inst, Mapping):
        for key in [k for k in err.validator_value if k not in inst]:
            yield Problem(code="schema.required", path=path + (key,), message=f"missing required key '{key}'{where}",
                          hint=x_hint)
    elif v in ("enum", "const"):
        allowed = list(err.validator_value) if v == "enum" else [err.validator_value]
        shown = [a for a in allowed if a is not None]
        close = did_you_mean(str(inst), [str(a) for a in shown]) if isinstance(inst, str) else None
        yield Problem(code="schema.enum", path=path, message=f"{_short(inst)} is not an allowed value",
                      expected="one of: " + ", ".join(repr(a) for a in shown) + (" or null" if None in allowed else ""),
                      found=_short(inst), hint=_join([close, x_hint]))
    elif v == "type":
        types = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        names = " or ".join(_JSON_NAMES.get(t, t) for t in types)
        yield Problem(code="schema.type", path=path, message=f"expected {names}, found {_type_name(inst)}",
                      expected=names, found=_short(inst), hint=x_hint)
    elif v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        yield Problem(code="schema.range", path=path, message=f"{_short(inst)} is out of range",
                      expected=f"a value {word} {err.validator_value}", found=_short(inst), hint=x_hint)
    elif v == "pattern":
        examples = err.schema.get("examples") if isinstance(err.schema, Mapping) else None
        examples = [str(e) for e in examples] if isinstance(examples, list) else []
        close = did_you_mean(str(inst), examples) if examples and isinstance(inst, str) else None
        yield Problem(code="schema.pattern", path=path, message=f"{_short(inst)} is not in the expected form",
                      expected="a value like " + ", ".join(examples) if examples else
                      f"a string matching {err.validator_value}", found=_short(inst), hint=_join([close, x_hint]))
    elif v in ("minItems", "minProperties", "minLength"):
        what = {"minItems": "item", "minProperties": "entry", "minLength": "character"}[v]
        n = err.validator_value
        yield Problem(code="schema.empty", path=path, message=f"needs at least {n} {what}{'s' if n != 1 else ''}",
                      found=_short(inst), hint=x_hint)
    else:
        yield Problem(code=f"schema.{v}", path=path, message=err.message, found=_short(inst), hint=x_hint)


def _branch_error(err: ValidationError) -> ValidationError:
    """For anyOf/oneOf: the error of the first branch the value's type fits (e.g. the enum, not "not a list")."""
    while err.validator in ("anyOf", "oneOf") and err.context:
        branches: dict[Any, list[ValidationError]] = {}
        for c in err.context:
            branches.setdefault(c.relative_schema_path[0], []).append(c)
        fitting = [errs for errs in branches.values()
                   if not any(c.validator == "type" and not c.relative_path for c in errs)]
        if not fitting:  # no branch accepts this type: one "expected X or Y" error
            types: list[str] = []
            for sub in err.validator_value:
                t = sub.get("type") if isinstance(sub, Mapping) else None
                t = t if isinstance(t, list) else [t] if t else ["enum value" if "enum" in sub else "value"]
                types += [x for x in t if x not in types]
            return ValidationError(f"{err.instance!r} has the wrong type", validator="type", validator_value=types,
                                   instance=err.instance, schema=err.schema, path=err.absolute_path)
        err = best_match(fitting[0])
    return err


def _position(instance: Any, rel: tuple) -> list[int]:
    out: list[int] = []
    node = instance
    for part in rel:
        if isinstance(node, Mapping) and part in node:
            out.append(list(node).index(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        else:
            out.append(10**6)
            node = None
    return out


_PER_KEY = {"additionalProperties", "required"}


def schema_problems(validator: Draft202012Validator, instance: Any, base: Path = (),
                    title: str | None = None) -> list[Problem]:
    """Every mistake of ``instance`` against ``validator``'s schema, each reported once with its path."""
    per_path: dict[tuple, list[ValidationError]] = {}
    chosen: list[ValidationError] = []
    for e in validator.iter_errors(instance):
        if e.validator in _PER_KEY or "propertyNames" in e.relative_schema_path:
            chosen.append(e)
        else:
            per_path.setdefault(tuple(e.absolute_path), []).append(e)
    chosen += [_branch_error(best_match(group)) for group in per_path.values()]
    problems: list[Problem] = []
    for e in chosen:
        problems.extend(_translate(e, base, title))
    # a missing key that is an unknown key's near miss is one mistake: keep only the "did you mean" problem
    unknown: dict[Path, list[str]] = {}
    for p in problems:
        if p.code == "schema.unknown-key":
            unknown.setdefault(p.path[:-1], []).append(str(p.path[-1]))
    out: list[Problem] = []
    seen: set[tuple[str, Path]] = set()
    for p in problems:
        if p.code == "schema.required" and did_you_mean(str(p.path[-1]), unknown.get(p.path[:-1], [])):
            continue
        if (p.code, p.path) not in seen:
            seen.add((p.code, p.path))
            out.append(p)
    out.sort(key=lambda p: _position(instance, p.path[len(base):]))
    return out


# --------------------------------------------------------------------------- the stage
def node_spec(node: Any, path: Path) -> tuple[registry.ModuleSpec | None, list[Problem]]:
    """The registry spec of a typed node (None for a ref, a malformed node or an unknown type) + problems."""
    if not isinstance(node, Mapping) or "ref" in node or not isinstance(node.get("type"), str):
        return None, []
    try:
        return registry.spec(node["type"], path=path + ("type",)), []
    except ConfigError as exc:
        return None, list(exc.problems)
    except Exception as exc:  # a plugin entry point that cannot even be described
        return None, [Problem(code="registry.broken", path=path + ("type",), message=str(exc))]


def is_router(node: Any) -> bool:
    """True when ``node`` is a typed node whose type resolves to the Router."""
    if not isinstance(node, Mapping) or not isinstance(node.get("type"), str):
        return False
    s = registry.find(node["type"])
    return s is not None and s.name == "Router"


def walk_nodes(modules: Any, base: Path = ("modules",)) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    """Every node (a mapping) in document order, Router routes included, with its path."""
    if not isinstance(modules, list):
        return
    for i, node in enumerate(modules):
        if not isinstance(node, Mapping):
            continue
        path = base + (i,)
        yield path, node
        routes = node.get("sub_modules") if is_router(node) else None
        if isinstance(routes, Mapping):
            for route, children in routes.items():
                yield from walk_nodes(children, path + ("sub_modules", route))


def _node_problems(node: Any, path: Path) -> list[Problem]:
    if not isinstance(node, Mapping):
        return []  # the skeleton / the parent's schema reported it
    if "ref" in node:
        ref = NodeValidator(pipeline_schema()["$defs"]["ref"])
        return schema_problems(ref, node, path, "a reference node")
    if "type" not in node:
        return [Problem(code="schema.required", path=path + ("type",), message="missing required key 'type'",
                        hint="a module node needs type: <name> (e.g. Transformer, Pooling) or is a reference "
                             "{ref: <id>}; available types: " + ", ".join(registry.names()))]
    if not isinstance(node["type"], str):
        return [Problem(code="schema.type", path=path + ("type",), message=f"expected string, found "
                        f"{_type_name(node['type'])}", expected="string", found=_short(node["type"]))]
    spec, problems = node_spec(node, path)
    if spec is None:
        return problems
    try:
        validator = _node_validator(spec)
    except Exception as exc:  # importing a plugin class failed
        return [Problem(code="registry.import-failed", path=path + ("type",),
                        message=f"cannot import module type '{spec.name}': {exc}",
                        hint="install the package that provides it")]
    return schema_problems(validator, node, path, spec.name) if validator is not None else []


def validate_schema(definition: Any) -> list[Problem]:
    """Stage 1: the skeleton, then every node against its own type's schema (Router routes included)."""
    problems = schema_problems(_skeleton_validator(), definition, (), None)
    if not isinstance(definition, Mapping):
        return problems
    for path, node in walk_nodes(definition.get("modules")):
        problems.extend(_node_problems(node, path))
    problems.sort(key=lambda p: _position(definition, p.path))  # document order
    return problems


# --------------------------------------------------------------------------- the editors' schema
def combined_schema() -> dict[str, Any]:
    """One self-contained schema for editors: the skeleton + a ``$defs`` entry per registered type
    (plugins with a schema included), selected by ``type`` with ``if``/``then`` (``stpipe schema``)."""
    schema = pipeline_schema()
    schema.pop("$id", None)
    defs = schema["$defs"]
    branches = []
    for name in registry.names():
        spec = registry.find(name)
        try:
            sub = module_schema(spec) if spec is not None else None
        except Exception:
            sub = None
        if sub is None:
            continue
        sub.pop("$schema", None)
        if "node" in sub.get("$defs", {}):
            sub["$defs"]["node"] = {"$ref": "#/$defs/node"}
        defs[name] = sub
        accepted = [name, *(a for a in (spec.st_type, *spec.aliases) if a)]
        branches.append({"if": {"properties": {"type": {"enum": accepted}}, "required": ["type"]},
                         "then": {"$ref": f"#/$defs/{name}"}})
    accepted_all: list[str] = []
    for name in registry.names():
        spec = registry.find(name)
        for a in (name, *((spec.st_type, *spec.aliases) if spec is not None else ())):
            if a and a not in accepted_all:
                accepted_all.append(a)
    else_ = defs["node"]["else"]
    else_["allOf"] = branches
    else_["properties"] = {"type": {"enum": accepted_all, "x-hint": "a registered module type: "
                                    + ", ".join(registry.names())}}
    return schema
