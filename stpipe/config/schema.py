"""Stage 1 of validation: JSON Schema (draft 2020-12), one mistake → one :class:`Problem` with its full path.

``schemas/pipeline.schema.json`` checks the skeleton (top-level keys, ``modules`` is a list of mappings);
each node is then checked *in code* against its own type's schema ``schemas/modules/<Name>.schema.json``
(``additionalProperties: false``), recursing into Router routes. This avoids the ``oneOf``/``if-then`` traps
(vague or duplicated errors) and keeps paths like ``modules[0].sub_modules.query[1].in_features``.

A module type registered from Python without a schema file may carry a class attribute ``schema`` (a
JSON Schema dict for its parameters; the node keys ``type``/``id``/``load_from`` are added); without one,
the schema is derived from its ``__init__`` signature (:func:`derived_schema`: the parameter names, required
= no default, simple types from evident annotations; a ``**kwargs`` constructor accepts any further keys).
A schema may add the keyword ``x-hint`` (a hint shown with its errors). How jsonschema's errors become problems
(one per mistake, in document order) is :mod:`stpipe.config.schema_problems`, shared with the run, training and
data-set settings.

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

from jsonschema import Draft202012Validator

from stpipe import registry
from stpipe.config.schema_derived import NODE_KEYS, derived_schema  # noqa: F401 - NODE_KEYS re-exported
from stpipe.config.schema_problems import NodeValidator, document_position, schema_problems, short_repr, type_name
from stpipe.errors import ConfigError, Path, Problem
from stpipe.resources import schemas_dir

#: the node keys every module schema accepts (a test checks the files under schemas/modules/ agree)
NODE_KEY_SCHEMAS: dict[str, dict[str, Any]] = {
    "type": {"type": "string"}, "id": {"type": "string", "minLength": 1},
    "load_from": {"type": "string", "minLength": 1},
}
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
                        f"{type_name(node['type'])}", expected="string", found=short_repr(node["type"]))]
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
    problems.sort(key=lambda p: document_position(definition, p.path))  # document order
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
