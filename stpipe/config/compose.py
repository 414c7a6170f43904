"""Hydra composition of the run configuration and the model definition, with source tracking.

``compose(model, overrides)`` composes ``conf/config.yaml`` (whose defaults pick ``model: minilm``) with
the command-line overrides, and returns a :class:`Composed`: the run settings, the model definition
(``model`` node) as plain dicts, and a :class:`SourceMap` that says where each definition value came from
(``conf/model/minilm.yaml:9:5``, or "override `model.modules.1.pooling_mode=meen`").

``model`` may be None (the ``model`` group default, or a ``model=<name>`` override), a name of the
``model`` group, the path of a YAML model definition (stored in Hydra's ConfigStore under a private name
and selected, so ``model.*`` overrides apply to it), a model definition as a mapping (likewise), or a saved
sentence-transformers directory / hub id: that one becomes a definition first (what ``stpipe import`` prints,
:func:`stpipe.formats.st.to_definition` — configs only, no weights) and is then composed as a mapping, so
``model.*`` overrides, validation and sweeps work on it exactly as on a YAML file (``Composed.saved_model``
names the directory).

The run settings are checked against ``schemas/run.schema.json`` (:mod:`stpipe.config.run`; the title
"invalid run settings"). Hydra and YAML errors become a :class:`ConfigError` (codes ``override.*`` and
``yaml.*``) naming the override and a "did you mean" — never a Hydra traceback. :func:`sweep_points`
expands sweep syntax (``a=1,2``, ``range(…)``, ``choice(…)``) so every point can be validated before the
first job starts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any

from stpipe.config.interpolation import env_free, resolve
from stpipe.config.overrides import compose_config, key_path, override_problem, parse_overrides
from stpipe.config.run import inputs_override, run_model_problems, run_problems
from stpipe.config.sources import SourceMap, load_yaml
from stpipe.errors import ConfigError, Problem, did_you_mean
from stpipe.formats.model_arg import model_argument
from stpipe.formats.st import module_sources, to_definition
from stpipe.resources import conf_dir, resolve_model_path

GROUP = "model"
#: the groups of conf/config.yaml's defaults list that only some verbs read: a verb module's GROUPS names those it
#: reads (train: training, loss, data; evaluate: data), and compose(groups=…) leaves the others out
VERB_GROUPS = ("data", "training", "loss")
_PRIVATE = "_file_"


@dataclass
class Composed:
    """The result of :func:`compose`."""

    run: dict[str, Any]  # the composed configuration without `model` (and without `hydra`)
    definition: dict[str, Any] | None  # the model definition; None when saved_model is set
    sources: SourceMap = field(default_factory=SourceMap)
    base_dir: FsPath | None = None  # relative paths in the definition are relative to this directory
    model_file: FsPath | None = None  # the YAML file the definition came from
    saved_model: str | None = None  # the saved sentence-transformers directory (or hub id) the definition describes
    overrides: list[str] = field(default_factory=list)
    run_sources: SourceMap = field(default_factory=SourceMap)  # where each run setting came from
    choice: list[str] = field(default_factory=list)  # the model choice stpipe added (`model=_file_…`), for Hydra
    saved_run: dict[str, Any] | None = None  # `run` with environment values as their ${oc.env:…} (what is saved)

    def run_record(self) -> dict[str, Any]:
        """The run settings as a run's record may hold them (``run.yaml``): no environment value, only the
        ``${oc.env:…}`` interpolation that read it."""
        return self.saved_run if self.saved_run is not None else self.run


def model_options(config_dir: FsPath) -> list[str]:
    """Names of the ``model`` group (``conf/model/*.yaml``)."""
    d = FsPath(config_dir) / GROUP
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def _store_file(path: FsPath) -> tuple[str, SourceMap]:
    """Put a user's YAML model file into Hydra's ConfigStore; return its private option name."""
    data, sources = load_yaml(path)
    return _store(data, sources, str(path.resolve()), str(path)), sources


def model_defaults_check(data: Any, sources: SourceMap, where: str) -> None:
    """A model definition is data: its ``defaults:`` list (Hydra's) may only compose other model files of the
    ``model`` group (``- NAME``, ``- _self_``) — never a launcher, sweeper, callback, output directory or run setting
    (``- override /hydra/sweeper: optuna``, ``- /data: x``, ``- x@_global_``): a ConfigError naming the file and
    the entry otherwise."""
    entries = data.get("defaults") if isinstance(data, Mapping) else None
    if entries is None:
        return
    items = list(enumerate(entries)) if isinstance(entries, list) else [(None, entries)]
    bad = [(i, e) for i, e in items if not (isinstance(e, str) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", e))]
    if bad:
        problems = []
        for i, e in bad:
            path = ("defaults",) if i is None else ("defaults", i)
            problems.append(Problem(
                code="yaml.model-defaults", path=path, source=sources.lookup(path) or where,
                message=f"{where}: a model definition's defaults list may only compose other model files (`- NAME` "
                f"of the model group, `- _self_`), found {e!r}: a model file cannot choose launchers, sweepers, "
                "callbacks, output directories or run settings", expected="- NAME | - _self_",
                hint="remove the entry; choose hydra/launcher=…, hydra/sweeper=…, hydra.sweep.dir=… and run settings "
                     "on the command line or in an experiment preset (+experiment=NAME)"))
        raise ConfigError(problems, title="invalid model definition")


def _group_model_check(name: Any, config_dir: FsPath) -> None:
    """:func:`model_defaults_check` for ``model=NAME`` (``<config_dir>/model/NAME.yaml``)."""
    f = config_dir / GROUP / f"{name}.yaml"
    if isinstance(name, str) and not name.startswith(_PRIVATE) and f.is_file():
        data, sources = load_yaml(f)
        model_defaults_check(data, sources, str(f))


def _store(data: Any, sources: SourceMap, key: str, where: str) -> str:
    """Put a model definition (a mapping) into Hydra's ConfigStore under a private option name."""
    from hydra.core.config_store import ConfigStore

    model_defaults_check(data, sources, where)

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


def _is_model_key(key: str) -> bool:
    return key == GROUP or key.startswith(GROUP + ".")


def _no_model_override(parsed: list[Any], given_as: str) -> None:
    clash = [o.input_line for o in parsed if o.key_or_group == GROUP]
    if clash:
        raise ConfigError([override_problem("override.conflict", clash[0], f"the model is already given as {given_as}",
                                    hint=f"drop `{clash[0]}`, or drop the model argument")])


def _model_names_only(parsed: list[Any], config_dir: FsPath) -> None:
    """``model=NAME`` picks ``conf/model/NAME.yaml`` — a name, never a path (``model=../../x`` would read a YAML
    from outside the group); a file or directory goes as the MODEL argument."""
    for o in parsed:
        value = o.value() if o.key_or_group == GROUP and not o.is_delete() else None
        if isinstance(value, str) and ("/" in value or "\\" in value or value.startswith(".")):
            raise ConfigError([override_problem(
                "override.unknown-option", o.input_line, f"'{value}' is not a model name", path=(GROUP,),
                expected="one of: " + ", ".join(model_options(config_dir)),
                hint=f"a model file or directory goes as the MODEL argument: stpipe VERB {value} …")],
                title="invalid overrides")


def _interpolation_source(path: tuple, parsed: list[Any], file_sources: SourceMap) -> str | None:
    """Where an interpolation that failed at ``path`` was written: an override of that key, else its line in the
    model file."""
    dotted = ".".join(str(p) for p in path)
    for o in parsed:
        if o.key_or_group == dotted:
            return f"override `{o.input_line}`"
    return file_sources.lookup(path[1:]) if path[:1] == (GROUP,) else None


def _compose_saved(saved: str, overrides: list[str], parsed: list[Any], config_dir: FsPath,
                   groups: Collection[str] | None) -> Composed:
    """A saved sentence-transformers directory (or hub id): its definition (configs only, no weights), composed
    as a mapping. The run settings are composed first: trust_remote_code / allow_pickle govern the reading."""
    _no_model_override(parsed, "a saved model directory")
    run = compose(None, [o.input_line for o in parsed if not _is_model_key(o.key_or_group)],
                  config_dir=config_dir, groups=groups, model_checks=False).run
    definition = to_definition(saved, trust_remote_code=run.get("trust_remote_code") is True,
                               allow_pickle=run.get("allow_pickle") is True)
    composed = compose(definition, overrides, config_dir=config_dir, groups=groups,
                       sources=SourceMap({(): f"saved model {saved}", **module_sources(saved)}),
                       base_dir=saved if FsPath(saved).is_dir() else None)
    composed.saved_model = saved
    return composed


def _run_sources(config_dir: FsPath, parsed: list[Any], tree: Any) -> SourceMap:
    """Where each run setting came from: an override, else its line in config.yaml."""
    try:
        sources = load_yaml(config_dir / "config.yaml")[1]
    except ConfigError:  # pragma: no cover - Hydra has just read the same file
        sources = SourceMap()
    for o in parsed:
        if not _is_model_key(o.key_or_group):
            sources.set_subtree(key_path(o.key_or_group, tree), f"override `{o.input_line}`")
    return sources


def compose(model: str | FsPath | Mapping[str, Any] | None = None, overrides: Sequence[str] = (), *,
            config_dir: str | FsPath | None = None, sources: SourceMap | None = None,
            base_dir: str | FsPath | None = None, groups: Collection[str] | None = None,
            model_checks: bool = True) -> Composed:
    """Compose ``config.yaml`` of ``config_dir`` (default: stpipe's ``conf/``) with ``model`` and ``overrides``.

    ``model`` may also be a model definition as a mapping (``sources``/``base_dir`` then describe where it came
    from); ``model.*`` overrides apply to it exactly as to a file. A saved model directory becomes such a mapping
    (see the module docstring). The run settings are checked (``schemas/run.schema.json``; unknown keys only
    in stpipe's own ``conf/``): a :class:`ConfigError` titled "invalid run settings" otherwise. ``groups``: the
    groups of VERB_GROUPS the caller reads (a verb's ``GROUPS``); the others are left out unless an override names
    them (None: every group as config.yaml picks it). ``model_checks``: also check the run settings that depend on
    the model (``task``, ``prompt_name``: :func:`stpipe.config.run.run_model_problems`)."""
    from omegaconf import OmegaConf, open_dict

    config_dir = FsPath(config_dir or conf_dir()).resolve()
    overrides = list(overrides)
    parsed = parse_overrides(overrides)
    _model_names_only(parsed, config_dir)
    chosen = _model_choice(model, parsed, config_dir, sources)
    if isinstance(chosen, FsPath):  # a saved model directory
        return _compose_saved(str(chosen), overrides, parsed, config_dir, groups)
    extra, user_file, file_sources = chosen
    for o in [*parse_overrides(extra), *parsed]:  # model=NAME: the group's file is checked like a user's
        if o.key_or_group == GROUP and not o.is_delete() and not o.is_sweep_override():
            _group_model_check(o.value(), config_dir)
    written = [inputs_override(o) for o in overrides]  # inputs=FILE is inputs.path (the sources keep the user's)
    applied = extra + _left_out(groups, parsed, config_dir) + written
    cfg = compose_config(config_dir, applied, user=written, hydra_group=False)  # only the choices are read
    choice = str(OmegaConf.select(cfg, f"hydra.runtime.choices.{GROUP}", default="") or "")
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        tree = resolve(cfg, GROUP)
    except ConfigError as exc:
        raise ConfigError([p.with_source(_interpolation_source(p.path, parsed, file_sources)) for p in exc.problems],
                          exc.title) from None
    saved_run = env_free(cfg, tree)
    definition = tree.pop(GROUP, None)
    saved_run.pop(GROUP, None)
    run_sources = _run_sources(config_dir, parsed, tree)
    bad_run = run_problems(tree, run_sources, strict=config_dir == FsPath(conf_dir()).resolve())
    if model_checks:
        bad_run = bad_run or run_model_problems(tree, definition, run_sources)
    if bad_run:
        raise ConfigError(bad_run, title="invalid run settings")
    model_file = user_file
    sources = file_sources
    if user_file is None and choice and not choice.startswith(_PRIVATE):
        f = config_dir / GROUP / f"{choice}.yaml"
        if f.is_file():
            model_file, sources = f, load_yaml(f)[1]
    for o in parse_overrides(applied):
        key = o.key_or_group
        if o.is_delete() or not key.startswith(GROUP + "."):
            continue
        path = key_path(key, {GROUP: definition})[1:]
        sources.set_subtree(path, f"override `{o.input_line}`")
    if isinstance(model, Mapping) and base_dir is not None:
        base = FsPath(base_dir)
    else:
        base = model_file.resolve().parent if model_file else None
    return Composed(run=tree, definition=definition if isinstance(definition, dict) else None, sources=sources,
                    base_dir=base, model_file=model_file, overrides=overrides, run_sources=run_sources, choice=extra,
                    saved_run=saved_run)


def _left_out(groups: Collection[str] | None, parsed: list[Any], config_dir: FsPath) -> list[str]:
    """``~GROUP`` (its defaults entry deleted) for each group of VERB_GROUPS that config.yaml's defaults list picks
    but the caller does not read (``groups``; None: all as config.yaml says) and no override names (``training=…``,
    ``training.lr=…``, ``~training``: then it is composed and checked as written)."""
    if groups is None:
        return []
    try:
        defaults = load_yaml(config_dir / "config.yaml")[0].get("defaults") or []
    except (ConfigError, AttributeError):  # Hydra says what is wrong with it
        return []
    picked = {k for d in defaults if isinstance(d, dict) for k, v in d.items() if v is not None}
    named = {o.key_or_group.split(".")[0] for o in parsed}
    return [f"~{g}" for g in VERB_GROUPS if g in picked and g not in groups and g not in named]


def _model_choice(model: str | FsPath | Mapping[str, Any] | None, parsed: list[Any], config_dir: FsPath,
                  sources: SourceMap | None) -> tuple[list[str], FsPath | None, SourceMap] | FsPath:
    """How ``model`` enters the composition: ``(the model= choice, the user's YAML file or None, its sources)``,
    or the directory of a saved model (composed by :func:`_compose_saved`)."""
    if isinstance(model, Mapping):
        import json

        _no_model_override(parsed, "a definition")
        file_sources = sources if sources is not None else SourceMap()
        key = json.dumps(model, sort_keys=True, default=str)
        return [f"{GROUP}={_store(dict(model), file_sources, key, 'definition')}"], None, file_sources
    if model is None:
        return [], None, SourceMap()
    m = str(model)
    if m in model_options(config_dir) and not FsPath(m).exists():
        return [f"{GROUP}={m}"], None, SourceMap()
    arg = model_argument(m)  # the one rule of what a MODEL argument is (stpipe.build / stpipe.load share it)
    if arg.kind == "definition":
        user_file = FsPath(m)
        name, file_sources = _store_file(user_file)
        _no_model_override(parsed, "a file")
        return [f"{GROUP}={name}"], user_file, file_sources
    if arg.kind == "saved" or "/" in m:  # a saved directory, or a hub id (org/name) looked up as one
        return FsPath(arg.path if arg.kind == "saved" else resolve_model_path(m))
    opts = model_options(config_dir)
    close = did_you_mean(m, opts)
    raise ConfigError([Problem(code="override.unknown-option", path=(GROUP,), source=f"model argument `{m}`",
                               message=f"'{m}' is not a model file, a saved model directory or a model name",
                               hint=(close + " " if close else "") + "model names: " + ", ".join(opts))])


def sweep_points(model: str | FsPath | None, overrides: Sequence[str], *, config_dir: str | FsPath | None = None,
                 validate: bool = True, groups: Collection[str] | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 ) -> list[tuple[list[str], Composed | ConfigError]]:
    """Expand Hydra sweep syntax into points (Hydra's BasicSweeper order) and compose — and, with
    ``validate``, validate — each one. A point's problems carry the source ``sweep point N (overrides)``
    (N counts from 0, like Hydra's job numbers). The points are counted first: more than the run setting
    ``max_sweep_points`` is a ConfigError before any is made. ``progress(done, total)`` is called per point."""
    from stpipe.config.hydra_quick import sweep_combinations
    from stpipe.config.sweep_limits import check_size

    parsed = parse_overrides(list(overrides))
    sweeps = [o for o in parsed if o.is_sweep_override()]
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    check_size(sweeps, fixed, FsPath(config_dir or conf_dir()))
    try:
        combos = sweep_combinations(sweeps)
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
            result = compose(model, point, config_dir=config_dir, groups=groups)
            if validate and result.definition is not None:
                from stpipe.config.validate import validate as run_validate

                result.definition = run_validate(result.definition, sources=result.sources,
                                                 base_dir=result.base_dir)
            out.append((point, result))
        except ConfigError as exc:
            problems = [replace(p, source=f"{label}; {p.source}" if p.source else label) for p in exc.problems]
            out.append((point, ConfigError(problems, title=f"{exc.title} ({label})")))
        if progress is not None:
            progress(n + 1, len(combos))
    return out
