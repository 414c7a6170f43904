"""Hydra overrides: parsing, composition on a config directory, and every Hydra failure as a :class:`Problem`.

:func:`compose_config` composes ``config.yaml`` with the overrides; when Hydra refuses some, each guilty override
is dropped in turn so that all of them are reported at once, each with a "did you mean" from the keys that do
exist (codes ``override.*``; a broken YAML file of the tree is ``yaml.syntax`` with its file:line:col).
Used by :mod:`stpipe.config.compose`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path as FsPath
from typing import Any

from stpipe.config.hydra_quick import NeedsHydraGroup, compose_without_hydra_group, hydra_on, plugins_scanned  # noqa: F401 - re-exported
from stpipe.config.sources import load_yaml
from stpipe.errors import ConfigError, PathPart, Problem, did_you_mean


def override_problem(code: str, line: str | None, message: str, path: Sequence[PathPart] = (),
                     source: str | None = None, **kw: Any) -> Problem:
    """A problem caused by the override ``line`` (its source), or by something else (``source``)."""
    return Problem(code=code, path=tuple(path), message=message,
                   source=f"override `{line}`" if line is not None else source, **kw)


def parse_overrides(overrides: Sequence[str]) -> list[Any]:
    """Hydra's parsed overrides; every syntax error reported (``override.syntax``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser, parsed, problems = OverridesParser.create(), [], []
    for line in overrides:
        try:
            parsed.extend(parser.parse_overrides([line]))
        except Exception as exc:
            key = line.lstrip("+~").partition("=")[0]
            path = tuple(key.split(".")) if re.fullmatch(r"[\w.\-/]+", key) else ()
            problems.append(override_problem("override.syntax", line, f"invalid override: {_syntax_reason(exc, line)}",
                                     path=path,
                                     hint="overrides look like key=value, +key=value (add) or ~key (delete); "
                                          "quote values with special characters: key='a,b'"))
    if problems:
        raise ConfigError(problems, title="invalid overrides")
    return parsed


def _syntax_reason(exc: Exception, line: str) -> str:
    """Hydra's parse error in words: the offending character and its position for a lexer error (Hydra prints a
    caret under a copy of the line), the parser's complaint otherwise; never the link to Hydra's docs alone."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip() and not ln.startswith(("See https://",
                                                                                    "Error parsing override"))]
    lexer = "LexerNoViableAltException: "
    if len(lines) >= 2 and lines[0].startswith(lexer) and lines[1].strip() == "^":
        col = lines[1].index("^") - len(lexer)
        if 0 <= col < len(line):
            return f"unexpected character {line[col]!r} at position {col + 1} of `{line}`"
        return f"cannot read `{line}` (an unclosed quote?)"
    reasons = [ln.strip() for ln in lines if ln.strip() != "^" and not ln.startswith(lexer)]
    if not reasons:
        return f"cannot read `{line}`"
    if "'<EOF>'" in reasons[0]:
        return f"`{line}` ends too early (a value is missing after its last '=', ',', '[' or '{{')"
    return reasons[0].replace("<EOF>", "the end of the override")


def key_path(key: str, tree: Any) -> tuple[PathPart, ...]:
    """``model.modules.1.pooling_mode`` → ``("model", "modules", 1, "pooling_mode")`` (ints for list items)."""
    out: list[PathPart] = []
    node = tree
    for seg in key.split("."):
        if isinstance(node, list) and seg.lstrip("-").isdigit():
            out.append(int(seg))
            node = node[int(seg)] if -len(node) <= int(seg) < len(node) else None
        else:
            out.append(seg)
            node = node.get(seg) if isinstance(node, dict) else None
    return tuple(out)


def _diagnose(o: Any, tree: Any, cause: str) -> Problem:
    """Why override ``o`` failed, with a "did you mean" from the keys that do exist."""
    line, key = o.input_line, o.key_or_group
    node, done = tree, []
    for seg in key.split("."):
        where = ".".join(done) or "the configuration"
        if isinstance(node, dict):
            if seg not in node:
                keys = [str(k) for k in node if done or k != "hydra"]  # Hydra's own settings: not listed
                if done and done[0] == "model":  # a model node: every key its schema has, not only those written
                    keys += [k for k in schema_keys(node, at_root=len(done) == 1, deprecated=False) if k not in keys]
                close = did_you_mean(seg, keys)
                add = f"to add a new key write +{key}=…" if not (o.is_add() or o.is_delete()) else None
                return override_problem("override.unknown-key", line, f"'{seg}' is not a key of {where}",
                                path=key_path(key, tree), expected="one of: " + ", ".join(keys),
                                hint=" ".join(h for h in (close, add) if h) or None)
            node = node[seg]
        elif isinstance(node, list):
            if not seg.lstrip("-").isdigit() or not -len(node) <= int(seg) < len(node):
                return override_problem("override.unknown-key", line, f"{where} is a list of {len(node)} items; "
                                f"'{seg}' is not one of its indexes", path=key_path(key, tree),
                                expected=f"an index from 0 to {len(node) - 1}")
            node = node[int(seg)]
        else:
            return override_problem("override.unknown-key", line, f"{where} is a value, not a mapping; it has no key "
                            f"'{seg}'", path=key_path(key, tree))
        done.append(seg)
    if o.is_add() and not o.is_force_add():
        return override_problem("override.exists", line, f"'{key}' already exists", path=key_path(key, tree),
                        hint=f"to change it write {key}=… (without '+'), or ++{key}=… to add or change")
    return override_problem("override.invalid", line, f"cannot apply this override: {cause}", path=key_path(key, tree),
                    hint="a mapping can only be merged with existing keys; add new keys one by one with "
                         f"+{key}.<name>=…" if "not in struct" in cause else None)


_CULPRIT = [r"Could not override '([^']+)'", r"Could not append to config\. An item is already at '([^']+)'",
            r"Could not delete from config\. '([^']+)' does not exist", r"Error merging override ([^=\s]+)",
            r"Could not find '([^']+)/[^'/]+'"]


def _culprit(exc: Exception, parsed: list[Any]) -> Any:
    text = str(exc)
    for pattern in _CULPRIT:
        m = re.search(pattern, text)
        if m:
            key = m.group(1).lstrip("+~")
            for o in parsed:
                if o.key_or_group == key:
                    return o
    m = re.search(r"Ambiguous value for argument '([^']+)'", text)
    if m:
        return next((o for o in parsed if o.input_line == m.group(1)), None)
    return None


def first_line(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def _yaml_in_chain(exc: BaseException | None) -> bool:
    import yaml

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, yaml.YAMLError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _broken_yaml_files(config_dir: FsPath) -> list[Problem]:
    """Hydra failed to parse a file of the config tree: find which, and say where (file:line:col)."""
    out: list[Problem] = []
    for f in sorted(FsPath(config_dir).rglob("*.yaml")):
        try:
            load_yaml(f)
        except ConfigError as exc:
            out.extend(exc.problems)
    return out


_CHECKED: dict[tuple[str, int, int], None] = {}


def check_config_tree(config_dir: FsPath) -> None:
    """Every YAML file of ``config_dir`` read with :func:`load_yaml`'s bounds (alias expansion, nesting) before
    Hydra reads them, since Hydra's own reading expands aliases without limit. A file is read again only when it
    changes (size or mtime)."""
    for f in sorted(FsPath(config_dir).rglob("*.yaml")):
        try:
            st = f.stat()
        except OSError:
            continue
        key = (str(f), st.st_size, st.st_mtime_ns)
        if key not in _CHECKED:
            try:
                load_yaml(f)
            except ConfigError as exc:
                if any(p.code in ("yaml.alias-bomb", "yaml.too-deep") for p in exc.problems):
                    raise
            _CHECKED[key] = None


def compose_config(config_dir: FsPath, overrides: list[str], user: Sequence[str] | None = None, *,
                   hydra_group: bool = True) -> Any:
    """Compose; on failure drop each guilty override in turn so all of them are reported at once. An override of a
    key the YAML does not set but the module's schema has (``model.modules.1.include_prompt=false``) is applied
    as if written with ``+``. ``user``: the overrides the user wrote (the others were added by stpipe, e.g. the
    model choice), the only ones an unexplained failure may blame. ``hydra_group=False``: the caller reads nothing of
    Hydra's own configuration but ``hydra.runtime.choices`` (a single run), so it is composed without Hydra's group
    when no override names a ``hydra`` key or group (:mod:`stpipe.config.hydra_quick`)."""

    parsed = parse_overrides(overrides)
    user = overrides if user is None else list(user)
    names_hydra = any(o.key_or_group.startswith("hydra") for o in parsed)
    quick = not hydra_group and not names_hydra
    plugins = plugins_scanned() or names_hydra
    if plugins and not quick:
        return _compose_all(config_dir, parsed, user, plugins=True)
    try:  # without Hydra's plugin scan (see hydra_on) or its group; whatever fails is composed again with both
        return _compose_all(config_dir, parsed, user, plugins=plugins, quick=quick)
    except (ConfigError, NeedsHydraGroup):
        return _compose_all(config_dir, parsed, user, plugins=True)


def _compose_all(config_dir: FsPath, parsed: list[Any], user: list[str], plugins: bool, quick: bool = False) -> Any:
    from omegaconf import OmegaConf

    failed: list[tuple[Any, BaseException]] = []
    remaining = list(parsed)
    with hydra_on(config_dir, plugins=plugins, quick=quick) as bounded:
        if not bounded:  # Hydra's own reading: every file of the tree checked first
            check_config_tree(config_dir)
        while True:
            cfg = _compose_dropping(config_dir, remaining, failed, user, quick)
            if not failed:
                break
            tree = OmegaConf.to_container(cfg, resolve=False)
            promote = [(o, e) for o, e in failed if _schema_has(o, tree)]
            if not promote:
                break
            for o, e in promote:  # retried as `+key=value`
                failed.remove((o, e))
                remaining.extend(parse_overrides(["+" + o.input_line]))
    if failed:
        raise ConfigError([_explain_failure(o, exc, tree, config_dir) for o, exc in failed],
                          title="invalid overrides")
    return cfg


def _compose_dropping(config_dir: FsPath, remaining: list[Any], failed: list[tuple[Any, BaseException]],
                      user: list[str], quick: bool = False) -> Any:
    """Hydra's composition of ``remaining`` (``quick``: without Hydra's group where that gives the same config);
    each override Hydra refuses moves to ``failed`` and it tries again."""
    from hydra import compose as hydra_compose
    from hydra.errors import MissingConfigException

    while True:
        lines = [o.input_line for o in remaining]
        try:
            if quick:
                return compose_without_hydra_group(lines)
            return hydra_compose(config_name="config", overrides=lines, return_hydra_config=True)
        except (ConfigError, NeedsHydraGroup):  # a broken file (bounded reading), or not composable here
            raise
        except MissingConfigException as exc:
            culprit = _culprit(exc, remaining)
            if culprit is None:
                raise ConfigError([_missing_problem(exc, None, config_dir)]) from None
            failed.append((culprit, exc))
        except Exception as exc:
            culprit = _culprit(exc, remaining)
            if culprit is None and _yaml_in_chain(exc):
                raise ConfigError(_broken_yaml_files(config_dir) or [Problem(
                    code="yaml.syntax", path=(), message=f"invalid YAML: {exc}", source=str(config_dir))]) from None
            if culprit is None:
                raise ConfigError([Problem(code="override.invalid", path=(), message=first_line(exc),
                                           source=", ".join(f"override `{o}`" for o in user) or None)],
                                  title="invalid overrides") from None
            failed.append((culprit, exc))
        remaining.remove(failed[-1][0])


def schema_keys(node: Any, at_root: bool = False, deprecated: bool = True) -> list[str]:
    """The keys the schema allows in ``node``: a module node's type's parameters, or — ``at_root`` — the model
    definition's top-level keys; [] when unknown. ``deprecated=False`` leaves out keys the schema marks
    ``deprecated`` (accepted, but not worth suggesting)."""
    from stpipe.config.schema import module_schema, node_spec, pipeline_schema

    try:
        if at_root:
            schema: Any = pipeline_schema()
        else:
            spec = node_spec(node, ())[0]
            schema = module_schema(spec) if spec is not None else None
    except Exception:  # a type that cannot be described: nothing known
        return []
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(props, Mapping):
        return []
    return [str(k) for k, v in props.items() if deprecated or not (isinstance(v, Mapping) and v.get("deprecated"))]


def _schema_has(o: Any, tree: Any) -> bool:
    """``o`` sets a key of a model node that the YAML leaves out but the node's schema has (no '+' needed)."""
    if o.is_add() or o.is_delete() or o.is_sweep_override() or not o.key_or_group.startswith("model."):
        return False
    parts = o.key_or_group.split(".")
    node = tree
    for seg in parts[:-1]:
        if isinstance(node, Mapping) and seg in node:
            node = node[seg]
        elif isinstance(node, list) and seg.isdigit() and int(seg) < len(node):
            node = node[int(seg)]
        else:
            return False
    if not isinstance(node, Mapping) or parts[-1] in node:
        return False
    return parts[-1] in schema_keys(node, at_root=len(parts) == 2)


def _explain_failure(o: Any, exc: BaseException, tree: Any, config_dir: FsPath) -> Problem:
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException):
        return _missing_problem(exc, o, config_dir)
    if o.is_sweep_override() or "Ambiguous value" in str(exc):
        return override_problem("override.sweep", o.input_line, "this override is a sweep (several values)",
                        hint="run a sweep with -m/--multirun; to pass a string with a comma, "
                             f"quote it: {o.key_or_group}='…'")
    return _diagnose(o, tree, first_line(exc))


def _missing_problem(exc: Any, o: Any, config_dir: FsPath) -> Problem:
    options = [x for x in (getattr(exc, "options", None) or []) if not x.startswith("_")]
    m = re.search(r"Could not find '([^']+)'", str(exc))
    missing = m.group(1) if m else str(exc).splitlines()[0]
    group, _, name = missing.rpartition("/")
    if not group:  # the primary config itself, or its directory
        return Problem(code="yaml.not-found", path=(), message=f"no config.yaml in {config_dir}",
                       source=str(config_dir), hint="the configuration directory must hold config.yaml")
    close = did_you_mean(name, options)
    avail = f"available {group} options: " + ", ".join(options) if options else f"no {group} options exist"
    return override_problem("override.unknown-option", o.input_line if o is not None else None,
                    f"there is no {group} named '{name}'", path=(group,),
                    source=str(FsPath(config_dir) / "config.yaml"),
                    hint=f"{close} {avail}" if close else avail)
