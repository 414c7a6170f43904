"""Hydra composition of the run configuration and the model definition, with source tracking.

``compose(model, overrides)`` composes ``conf/config.yaml`` (whose defaults pick ``model: minilm``) with
the command-line overrides, and returns a :class:`Composed`: the run settings, the model definition
(``model`` node) as plain dicts, and a :class:`SourceMap` that says where each definition value came from
(``conf/model/minilm.yaml:9:5``, or "override `model.modules.1.pooling_mode=meen`").

``model`` may be None (the ``model`` group default, or a ``model=<name>`` override), a name of the
``model`` group, the path of a YAML model definition (stored in Hydra's ConfigStore under a private name
and selected, so ``model.*`` overrides apply to it), or a saved sentence-transformers directory / hub id,
which is left to the caller (``Composed.saved_model``; ``model.*`` overrides are returned unapplied in
``Composed.model_overrides``).

Hydra and YAML errors become a :class:`ConfigError` (codes ``override.*`` and ``yaml.*``) naming the
override and a "did you mean" — never a Hydra traceback. :func:`sweep_points` expands sweep syntax
(``a=1,2``, ``range(…)``, ``choice(…)``) so every point can be validated before the first job starts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any

from stpipe.config.errors import ConfigError, PathPart, Problem, did_you_mean
from stpipe.config.sources import SourceMap, load_yaml
from stpipe.resources import conf_dir, resolve_model_path

GROUP = "model"
_PRIVATE = "_file_"


@dataclass
class Composed:
    """The result of :func:`compose`."""

    run: dict[str, Any]  # the composed configuration without `model` (and without `hydra`)
    definition: dict[str, Any] | None  # the model definition; None when saved_model is set
    sources: SourceMap = field(default_factory=SourceMap)
    base_dir: FsPath | None = None  # relative paths in the definition are relative to this directory
    model_file: FsPath | None = None  # the YAML file the definition came from
    saved_model: str | None = None  # a saved sentence-transformers directory (or hub id) to load instead
    model_overrides: list[str] = field(default_factory=list)  # `model.*` overrides not applied (saved_model)
    overrides: list[str] = field(default_factory=list)


def _problem(code: str, line: str | None, message: str, path: Sequence[PathPart] = (), source: str | None = None,
             **kw: Any) -> Problem:
    """A problem caused by the override ``line`` (its source), or by something else (``source``)."""
    return Problem(code=code, path=tuple(path), message=message,
                   source=f"override `{line}`" if line is not None else source, **kw)


def _parse(overrides: Sequence[str]) -> list[Any]:
    """Hydra's parsed overrides; every syntax error reported (``override.syntax``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser, parsed, problems = OverridesParser.create(), [], []
    for line in overrides:
        try:
            parsed.extend(parser.parse_overrides([line]))
        except Exception as exc:
            detail = str(exc).splitlines()
            msg = detail[1] if len(detail) > 1 else (detail[0] if detail else "cannot parse")
            problems.append(_problem("override.syntax", line, f"invalid override: {msg}",
                                     hint="overrides look like key=value, +key=value (add) or ~key (delete); "
                                          "quote values with special characters: key='a,b'"))
    if problems:
        raise ConfigError(problems, title="invalid overrides")
    return parsed


@contextmanager
def _hydra(config_dir: FsPath) -> Iterator[None]:
    """Hydra initialised on ``config_dir``, leaving any global Hydra state of the caller untouched."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    backup = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base=None):
            yield
    finally:
        restore_gh_from_backup(backup)


def model_options(config_dir: FsPath) -> list[str]:
    """Names of the ``model`` group (``conf/model/*.yaml``)."""
    d = FsPath(config_dir) / GROUP
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def _store_file(path: FsPath) -> tuple[str, SourceMap]:
    """Put a user's YAML model file into Hydra's ConfigStore; return its private option name."""
    data, sources = load_yaml(path)
    return _store(data, sources, str(path.resolve()), str(path)), sources


def _store(data: Any, sources: SourceMap, key: str, where: str) -> str:
    """Put a model definition (a mapping) into Hydra's ConfigStore under a private option name."""
    from hydra.core.config_store import ConfigStore

    if not isinstance(data, dict):
        raise ConfigError([Problem(code="schema.type", path=(), source=sources.get(()) or where,
                                   message=f"a model definition is a mapping, found {type(data).__name__}",
                                   hint="the file should start with keys such as name: and modules:")])
    name = _PRIVATE + hashlib.sha1(key.encode()).hexdigest()[:12]
    try:
        ConfigStore.instance().store(group=GROUP, name=name, node=data)
    except Exception as exc:
        raise ConfigError([Problem(code="yaml.unsupported", path=(), source=where,
                                   message=f"Hydra cannot hold this definition: {exc}")]) from None
    return name


def _key_path(key: str, tree: Any) -> tuple[PathPart, ...]:
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
                close = did_you_mean(seg, keys)
                add = f"to add a new key write +{key}=…" if not (o.is_add() or o.is_delete()) else None
                return _problem("override.unknown-key", line, f"'{seg}' is not a key of {where}",
                                path=_key_path(key, tree), expected="one of: " + ", ".join(keys),
                                hint=" ".join(h for h in (close, add) if h) or None)
            node = node[seg]
        elif isinstance(node, list):
            if not seg.lstrip("-").isdigit() or not -len(node) <= int(seg) < len(node):
                return _problem("override.unknown-key", line, f"{where} is a list of {len(node)} items; "
                                f"'{seg}' is not one of its indexes", path=_key_path(key, tree),
                                expected=f"an index from 0 to {len(node) - 1}")
            node = node[int(seg)]
        else:
            return _problem("override.unknown-key", line, f"{where} is a value, not a mapping; it has no key "
                            f"'{seg}'", path=_key_path(key, tree))
        done.append(seg)
    if o.is_add() and not o.is_force_add():
        return _problem("override.exists", line, f"'{key}' already exists", path=_key_path(key, tree),
                        hint=f"to change it write {key}=… (without '+'), or ++{key}=… to add or change")
    return _problem("override.invalid", line, f"cannot apply this override: {cause}", path=_key_path(key, tree),
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


def _first_line(exc: BaseException) -> str:
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


def _compose_cfg(config_dir: FsPath, overrides: list[str]) -> Any:
    """Compose; on failure drop each guilty override in turn so all of them are reported at once."""
    from hydra import compose as hydra_compose
    from hydra.errors import MissingConfigException

    parsed = _parse(overrides)
    failed: list[tuple[Any, BaseException]] = []
    remaining = list(parsed)
    with _hydra(config_dir):
        while True:
            try:
                cfg = hydra_compose(config_name="config", overrides=[o.input_line for o in remaining],
                                    return_hydra_config=True)
                break
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
                    raise ConfigError([Problem(code="override.invalid", path=(), message=_first_line(exc),
                                               source=", ".join(f"override `{o}`" for o in overrides) or None)],
                                      title="invalid overrides") from None
                failed.append((culprit, exc))
            remaining.remove(failed[-1][0])
    if failed:
        from omegaconf import OmegaConf

        tree = OmegaConf.to_container(cfg, resolve=False)
        raise ConfigError([_explain_failure(o, exc, tree, config_dir) for o, exc in failed],
                          title="invalid overrides")
    return cfg


def _explain_failure(o: Any, exc: BaseException, tree: Any, config_dir: FsPath) -> Problem:
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException):
        return _missing_problem(exc, o, config_dir)
    if o.is_sweep_override() or "Ambiguous value" in str(exc):
        return _problem("override.sweep", o.input_line, "this override is a sweep (several values)",
                        hint="sweeps run with --multirun (see sweep_points); to pass a string with a comma, "
                             f"quote it: {o.key_or_group}='…'")
    return _diagnose(o, tree, _first_line(exc))


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
    return _problem("override.unknown-option", o.input_line if o is not None else None,
                    f"there is no {group} named '{name}'", path=(group,),
                    source=str(FsPath(config_dir) / "config.yaml"),
                    hint=f"{close} {avail}" if close else avail)


def compose(model: str | FsPath | Mapping[str, Any] | None = None, overrides: Sequence[str] = (), *,
            config_dir: str | FsPath | None = None, sources: SourceMap | None = None,
            base_dir: str | FsPath | None = None) -> Composed:
    """Compose ``config.yaml`` of ``config_dir`` (default: stpipe's ``conf/``) with ``model`` and ``overrides``.

    ``model`` may also be a model definition as a mapping (``sources``/``base_dir`` then describe where it came
    from); ``model.*`` overrides apply to it exactly as to a file."""
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    config_dir = FsPath(config_dir or conf_dir()).resolve()
    overrides = list(overrides)
    parsed = _parse(overrides)
    extra: list[str] = []
    user_file: FsPath | None = None
    file_sources = SourceMap()
    saved: str | None = None
    if isinstance(model, Mapping):
        import json

        file_sources = sources if sources is not None else SourceMap()
        key = json.dumps(model, sort_keys=True, default=str)
        extra = [f"{GROUP}={_store(dict(model), file_sources, key, 'definition')}"]
    elif model is not None:
        m = str(model)
        if m in model_options(config_dir) and not FsPath(m).exists():
            extra = [f"{GROUP}={m}"]
        elif FsPath(m).is_file() or m.endswith((".yaml", ".yml")):
            user_file = FsPath(m)
            name, file_sources = _store_file(user_file)
            extra = [f"{GROUP}={name}"]
            clash = [o.input_line for o in parsed if o.key_or_group == GROUP]
            if clash:
                raise ConfigError([_problem("override.conflict", clash[0], "the model is already given as a file",
                                            hint=f"drop `{clash[0]}`, or drop the file argument")])
        elif FsPath(resolve_model_path(m)).is_dir() or "/" in m:
            saved = resolve_model_path(m)
        else:
            opts = model_options(config_dir)
            close = did_you_mean(m, opts)
            raise ConfigError([Problem(code="override.unknown-option", path=(GROUP,), source=f"model argument `{m}`",
                                       message=f"'{m}' is not a model file, a saved model directory or a model name",
                                       hint=(close + " " if close else "") + "model names: " + ", ".join(opts))])
    model_ovr = [o.input_line for o in parsed if saved and (o.key_or_group == GROUP
                                                            or o.key_or_group.startswith(GROUP + "."))]
    applied = extra + [line for line in overrides if line not in model_ovr]
    cfg = _compose_cfg(config_dir, applied)
    choice = str(OmegaConf.select(cfg, f"hydra.runtime.choices.{GROUP}", default="") or "")
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        tree = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or ""
        raise ConfigError([Problem(code="yaml.interpolation", path=_key_path(key, None) if key else (),
                                   message=f"cannot resolve an interpolation: {_first_line(exc)}",
                                   hint="${a.b} refers to another key of the configuration (a.b)")]) from None
    definition = tree.pop(GROUP, None)
    model_file = user_file
    sources = file_sources
    if user_file is None and choice and not choice.startswith(_PRIVATE):
        f = config_dir / GROUP / f"{choice}.yaml"
        if f.is_file():
            model_file, sources = f, load_yaml(f)[1]
    if saved:
        return Composed(run=tree, definition=None, saved_model=saved, model_overrides=model_ovr,
                        overrides=overrides)
    for o in _parse(applied):
        key = o.key_or_group
        if o.is_delete() or not key.startswith(GROUP + "."):
            continue
        path = _key_path(key, {GROUP: definition})[1:]
        sources.set_subtree(path, f"override `{o.input_line}`")
    if isinstance(model, Mapping) and base_dir is not None:
        base = FsPath(base_dir)
    else:
        base = model_file.resolve().parent if model_file else None
    return Composed(run=tree, definition=definition if isinstance(definition, dict) else None, sources=sources,
                    base_dir=base, model_file=model_file, overrides=overrides)


def sweep_points(model: str | FsPath | None, overrides: Sequence[str], *, config_dir: str | FsPath | None = None,
                 validate: bool = True) -> list[tuple[list[str], Composed | ConfigError]]:
    """Expand Hydra sweep syntax into points (Hydra's BasicSweeper order) and compose — and, with
    ``validate``, validate — each one. A point's problems carry the source ``sweep point N (overrides)``
    (N counts from 0, like Hydra's job numbers)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parsed = _parse(list(overrides))
    sweeps = [o for o in parsed if o.is_sweep_override()]
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    try:
        combos = BasicSweeper.split_arguments(sweeps, None)[0] if sweeps else [[]]
    except Exception as exc:
        raise ConfigError([Problem(code="override.sweep", path=(), message=f"cannot expand the sweep: {exc}",
                                   source=", ".join(f"override `{o.input_line}`" for o in sweeps),
                                   hint="supported sweeps: a=1,2  a=range(0,10,2)  a=choice(x,y)")],
                          title="invalid sweep") from None
    out: list[tuple[list[str], Composed | ConfigError]] = []
    for n, combo in enumerate(combos):
        point = fixed + list(combo)
        label = f"sweep point {n} ({' '.join(combo)})"
        try:
            result = compose(model, point, config_dir=config_dir)
            if validate and result.definition is not None:
                from stpipe.config.validate import validate as run_validate

                result.definition = run_validate(result.definition, sources=result.sources,
                                                 base_dir=result.base_dir)
            out.append((point, result))
        except ConfigError as exc:
            problems = [replace(p, source=f"{label}; {p.source}" if p.source else label) for p in exc.problems]
            out.append((point, ConfigError(problems, title=f"{exc.title} ({label})")))
    return out
