"""JSON Schema errors → :class:`~stpipe.errors.Problem` objects: each mistake once, at its full path, in document
order, in words ("expected integer, found string", "did you mean 'pooling_mode'?"), with the schema's ``x-hint``.
Used by the model definition's schema stage (:mod:`stpipe.config.schema`) and by the run, training, loss and
data-set settings.

>>> [(p.code, p.path, p.found) for p in schema_problems(NodeValidator({"properties": {"n": {"type": "integer"}}}),
...                                                       {"n": 2.0}, ("training",))]
[('schema.type', ('training', 'n'), '2.0')]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from stpipe.errors import Path, Problem, did_you_mean


def _strict_integer(checker: Any, instance: Any) -> bool:
    """JSON Schema counts 32.0 as an integer; the constructors do not (``max_seq_length: 1e9`` must not pass)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


#: draft 2020-12, with "integer" meaning a Python int (what the modules accept)
NodeValidator = validators.extend(
    Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer))
_JSON_NAMES = {"object": "mapping", "array": "list", "null": "null", "string": "string", "integer": "integer",
               "number": "number", "boolean": "boolean"}


def type_name(value: Any) -> str:
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


def short_repr(value: Any, limit: int = 60) -> str:
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
            yield Problem(code="schema.key-name", path=path + (key,), message=f"invalid key {short_repr(key)}{where}",
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
        yield Problem(code="schema.enum", path=path, message=f"{short_repr(inst)} is not an allowed value",
                      expected="one of: " + ", ".join(repr(a) for a in shown) + (" or null" if None in allowed else ""),
                      found=short_repr(inst), hint=_join([close, x_hint]))
    elif v == "type":
        types = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        names = " or ".join(_JSON_NAMES.get(t, t) for t in types)
        yield Problem(code="schema.type", path=path, message=f"expected {names}, found {type_name(inst)}",
                      expected=names, found=short_repr(inst), hint=x_hint)
    elif v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        yield Problem(code="schema.range", path=path, message=f"{short_repr(inst)} is out of range",
                      expected=f"a value {word} {err.validator_value}", found=short_repr(inst), hint=x_hint)
    elif v == "pattern":
        examples = err.schema.get("examples") if isinstance(err.schema, Mapping) else None
        examples = [str(e) for e in examples] if isinstance(examples, list) else []
        close = did_you_mean(str(inst), examples) if examples and isinstance(inst, str) else None
        yield Problem(code="schema.pattern", path=path, message=f"{short_repr(inst)} is not in the expected form",
                      expected="a value like " + ", ".join(examples) if examples else
                      f"a string matching {err.validator_value}", found=short_repr(inst), hint=_join([close, x_hint]))
    elif v in ("minItems", "minProperties", "minLength"):
        what = {"minItems": "item", "minProperties": "entry", "minLength": "character"}[v]
        n = err.validator_value
        yield Problem(code="schema.empty", path=path, message=f"needs at least {n} {what}{'s' if n != 1 else ''}",
                      found=short_repr(inst), hint=x_hint)
    else:
        yield Problem(code=f"schema.{v}", path=path, message=err.message, found=short_repr(inst), hint=x_hint)


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


def document_position(instance: Any, rel: tuple) -> list[int]:
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
    out.sort(key=lambda p: document_position(instance, p.path[len(base):]))
    return out
