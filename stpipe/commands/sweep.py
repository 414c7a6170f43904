"""Sweeps (``stpipe VERB -m …``) through Hydra's own multirun: its sweepers and launchers, its directory layout.

:func:`multirun` is what ``-m`` runs for every verb. With Hydra's basic sweeper every point is composed and
validated first (:func:`stpipe.commands.common.sweep` lists the failing ones and nothing starts, exit 2); then the
same overrides go to Hydra's multirun, so ``hydra/launcher=joblib|submitit_local|submitit_slurm|ray`` and
``hydra/sweeper=optuna`` (plugins: the extras ``stpipe[sweep]`` and ``stpipe[ray]``) work as in any Hydra app.
Hydra calls :func:`run_point` — a top-level, picklable task function — once per job: it composes that point with
stpipe's composition, writes ``definition.yaml`` and ``run.yaml`` into the job's directory, runs the verb's
``job(composed, job_dir)`` and writes ``metrics.json``; a point that fails (a late config error, out of memory,
any exception) writes ``error.json`` instead and the other points go on. The task function returns the main
metric (a float, for optimising sweepers such as Optuna), None for a verb without one and for a failed point
(Optuna records None as a failed trial and goes on; NaN it would refuse). The layout (the contract with
``stpipe report``):

    <hydra.sweep.dir>/multirun.yaml, <N>/.hydra/{config,hydra,overrides}.yaml, <N>/definition.yaml,
    <N>/run.yaml, <N>/metrics.json | <N>/error.json

A verb's ``job`` returns None or a dict ``{"main_metric": NAME | None, "metrics": {NAME: float}}``; the run setting
``metric=NAME`` picks another of its metrics as the one returned to the sweeper. ``resume=true`` (with the same
``hydra.sweep.dir=…``, or without it the latest sweep under ``multirun/`` with the same overrides) skips the points
whose ``metrics.json`` exists. The sweep's exit code is 1 when some point failed, 0 when all succeeded."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stpipe.errors import StpipeError, UsageError
from stpipe.files import atomic_write

#: (group, option) → (the module Hydra finds the plugin in, the stpipe extra that installs it)
PLUGINS: dict[tuple[str, str], tuple[str, str]] = {
    ("hydra/launcher", "joblib"): ("hydra_plugins.hydra_joblib_launcher", "sweep"),
    ("hydra/launcher", "submitit_local"): ("hydra_plugins.hydra_submitit_launcher", "sweep"),
    ("hydra/launcher", "submitit_slurm"): ("hydra_plugins.hydra_submitit_launcher", "sweep"),
    ("hydra/launcher", "ray"): ("hydra_plugins.hydra_ray_launcher", "ray"),
    ("hydra/launcher", "ray_aws"): ("hydra_plugins.hydra_ray_launcher", "ray"),
    ("hydra/sweeper", "optuna"): ("hydra_plugins.hydra_optuna_sweeper", "sweep"),
}
_SKIP_KEYS = ("resume",)  # settings that change how a sweep runs, not what a point is


class SweepFailed(StpipeError):
    """Some points of a sweep failed at run time (each has its error.json); the others ran."""


@dataclass(frozen=True)
class SweepJob:
    """What every job needs besides its Hydra config: picklable, sent to joblib/submitit/Ray workers."""

    verb: str
    model: str | None
    cwd: str
    resume: bool


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _plugin_choices(overrides: list[str], config_dir: Path) -> list[tuple[str, str]]:
    """``hydra/launcher=X`` / ``hydra/sweeper=X`` asked for on the command line or by an ``+experiment=`` preset."""
    out = []
    for o in overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key in ("hydra/launcher", "hydra/sweeper"):
            out.append((key, value))
        elif key == "experiment" and (config_dir / "experiment" / f"{value}.yaml").is_file():
            for line in (config_dir / "experiment" / f"{value}.yaml").read_text().splitlines():
                line = line.strip().removeprefix("- ").removeprefix("override ").strip()
                for group in ("hydra/launcher", "hydra/sweeper"):
                    if line.startswith(f"/{group}:"):
                        out.append((group, line.split(":", 1)[1].split("#")[0].strip()))
    return out


def check_plugins(overrides: list[str], config_dir: Path) -> None:
    """A launcher or sweeper whose plugin is not installed: a UsageError naming the extra that installs it."""
    for group, option in _plugin_choices(overrides, config_dir):
        module, extra = PLUGINS.get((group, option), (None, None))
        if module and not _installed(module):
            raise UsageError(f"{group}={option} needs Hydra's plugin '{module.split('.')[1]}', which is not "
                             f"installed: pip install 'stpipe[{extra}]'")


def _point_overrides(task_overrides: list[str]) -> list[str]:
    """A job's overrides as the user wrote them: without stpipe's private model choice and run-mode settings."""
    from stpipe.config.compose import _PRIVATE

    return [o for o in task_overrides if not o.startswith(f"model={_PRIVATE}")
            and o.partition("=")[0].lstrip("+") not in _SKIP_KEYS]


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path, "w", "utf-8") as fh:
        fh.write(json.dumps(data, indent=2, default=str) + "\n")


def _done(job_dir: Path, overrides: list[str]) -> dict[str, Any] | None:
    """The metrics.json of an earlier run of this point (same overrides) in this sweep directory, if any."""
    for candidate in [job_dir, *sorted(job_dir.parent.iterdir())]:
        f = candidate / "metrics.json"
        if f.is_file():
            try:
                data = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if data.get("status") == "ok" and data.get("overrides") == overrides:
                return data
    return None


def _returned(metrics: dict[str, Any], main: str | None) -> float | None:
    value = metrics.get(main) if main else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _describe(exc: BaseException) -> tuple[str, str, str]:
    """(error type, one-line message, full details) of a failed point."""
    from stpipe.errors import ConfigError

    if isinstance(exc, ConfigError):
        details = exc.render()
    elif isinstance(exc, StpipeError):
        details = str(exc)
    else:
        details = "".join(traceback.format_exception(exc))
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return type(exc).__name__, (lines[0] if lines else type(exc).__name__), details


def run_point(job: SweepJob, cfg: Any) -> float | None:
    """Hydra's task function for one point of a sweep (see the module docstring). Never raises for a failed
    point: the failure is written to ``error.json`` and None returned, so the sweep goes on."""
    import os

    from hydra.core.hydra_config import HydraConfig

    from stpipe.config.sweep_limits import outside
    from stpipe.experiments.report import one_line

    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    overrides = _point_overrides(list(hc.overrides.task))
    label = one_line(f"[{hc.job.num}] {' '.join(overrides)}")
    if outside(job_dir, Path(hc.sweep.dir)):  # the sweeper or a plugin composed a subdir the CLI did not check
        print(f"FAIL  {label}: its directory {job_dir} is outside the sweep directory; not run", file=sys.stderr)
        return None
    os.chdir(job.cwd)  # relative inputs= are the user's, whichever worker runs the job
    if job.resume:
        done = _done(job_dir, overrides)
        if done is not None:
            print(f"{label}: done before, skipped (resume)")
            if not (job_dir / "metrics.json").is_file():  # found under another job number (Optuna)
                write_json(job_dir / "metrics.json", done)
            return _returned(done.get("metrics", {}), done.get("main_metric"))
    for name in ("metrics.json", "error.json"):
        (job_dir / name).unlink(missing_ok=True)
    print(label, flush=True)
    t0 = time.perf_counter()
    try:
        result, main = _run_verb(job, overrides, job_dir)
    except Exception as exc:  # noqa: BLE001 - one point's failure (OOM included) must not end the sweep
        error, message, details = _describe(exc)
        write_json(job_dir / "error.json", {"verb": job.verb, "status": "failed", "error": error,
                                             "message": message, "details": details, "overrides": overrides,
                                             "seconds": round(time.perf_counter() - t0, 3)})
        print(f"FAIL  {label}: {error}: {message}", file=sys.stderr, flush=True)
        return None
    write_json(job_dir / "metrics.json", {"verb": job.verb, "status": "ok", "main_metric": result.get("main_metric"),
                                           "metrics": result.get("metrics", {}), **_undefined(result),
                                           "overrides": overrides,
                                           "seconds": round(time.perf_counter() - t0, 3)})
    return _returned(result.get("metrics", {}), main)


def _run_verb(job: SweepJob, overrides: list[str], job_dir: Path) -> tuple[dict[str, Any], str | None]:
    """Compose (and check) the point, write its resolved definition and run settings, run the verb's job."""
    import importlib

    import yaml

    from stpipe.commands import VERB_MODULES
    from stpipe.commands.common import compose_checked
    from stpipe.config.validate import validate

    composed = compose_checked(job.model, overrides, job.verb)
    if composed.definition is not None:
        composed.definition = validate(composed.definition, sources=composed.sources, base_dir=composed.base_dir)
        (job_dir / "definition.yaml").write_text(yaml.safe_dump(composed.definition, sort_keys=False))
    (job_dir / "run.yaml").write_text(yaml.safe_dump(composed.run_record(), sort_keys=False))
    verb_job = importlib.import_module(f"stpipe.commands.{VERB_MODULES[job.verb]}").job
    result = verb_job(composed, job_dir) or {}
    metrics = {k: None if v is None else float(v) for k, v in (result.get("metrics") or {}).items()}
    main = composed.run.get("metric") or result.get("main_metric")
    if main is not None and main not in metrics:
        from stpipe.errors import CommandError

        raise CommandError(f"metric={main}: `stpipe {job.verb}` reports no such metric (it reports: "
                           f"{', '.join(metrics) or 'none'})")
    return {"main_metric": result.get("main_metric"), "metrics": metrics, **_undefined(result)}, main


def _undefined(result: dict[str, Any]) -> dict[str, Any]:
    """The evaluator's reasons for metrics without a value (``undefined``), when there are."""
    return {"undefined": result["undefined"]} if result.get("undefined") else {}


def _latest_sweep(overrides: list[str]) -> str | None:
    """The newest ``multirun/<date>/<time>`` (Hydra's default sweep dir) whose sweep had these overrides."""
    import yaml

    want = _point_overrides(overrides)
    for multirun_yaml in sorted(Path("multirun").glob("*/*/multirun.yaml"), reverse=True):
        try:
            task = yaml.safe_load(multirun_yaml.read_text())["hydra"]["overrides"]["task"]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            continue
        if _point_overrides(list(task)) == want:
            return str(multirun_yaml.parent)
    return None


def _hydra_settings(model: str | None, overrides: list[str], config_dir: Path) -> tuple[list[str], Any]:
    """stpipe's model choice (``model=_file_…``) and the composed ``hydra`` node, from the overrides that are not
    sweeps (Hydra composes no sweep)."""
    from stpipe.config.compose import compose
    from stpipe.config.overrides import compose_config, parse_overrides

    fixed = [o.input_line for o in parse_overrides(overrides) if not o.is_sweep_override()]
    choice = compose(model, fixed).choice
    return choice, compose_config(config_dir, choice + fixed, user=fixed).hydra


def multirun(model: str | None, overrides: list[str], verb: str) -> int:
    """``stpipe VERB -m``: the sweep through Hydra's multirun (see the module docstring). 0: every point ran,
    1: some failed (their error.json says why); invalid points found before the start raise (exit 2)."""
    from omegaconf import OmegaConf

    from stpipe.commands.common import sweep
    from stpipe.config.sweep_limits import subdir_problem
    from stpipe.resources import conf_dir

    config_dir = Path(conf_dir()).resolve()
    check_plugins(overrides, config_dir)
    choice, hydra_cfg = _hydra_settings(model, overrides, config_dir)
    why = subdir_problem(OmegaConf.to_container(hydra_cfg.sweep, resolve=False).get("subdir"), overrides)
    if why:
        raise UsageError(f"{why}: every job's directory must stay inside hydra.sweep.dir; leave hydra.sweep.subdir at "
                         "its default (${hydra.job.num}) or give a relative name below the sweep directory")
    sweeper = str(OmegaConf.select(hydra_cfg, "runtime.choices.hydra/sweeper", default="basic"))
    if sweeper == "basic":  # the points are known: all are checked before the first job starts
        params = OmegaConf.select(hydra_cfg, "sweeper.params", default=None)
        params = OmegaConf.to_container(params, resolve=False) if params is not None else {}
        sweep(model, [f"{k}={v}" for k, v in params.items()] + overrides, verb)
    overrides = importlib.import_module("stpipe.commands.sweep_optuna").with_direction(
        _as_hydra_needs(overrides, config_dir, choice), config_dir, verb, sweeper)  # Optuna's direction
    resume = any(o.partition("=")[0] == "resume" and o.partition("=")[2].lower() == "true" for o in overrides)
    given_dir = any(o.lstrip("+").startswith("hydra.sweep.dir=") for o in overrides)
    if resume and not given_dir:
        found = _latest_sweep(overrides)
        if found is None:
            raise UsageError("resume=true: no earlier sweep with these overrides under multirun/; give the sweep's "
                             "directory: hydra.sweep.dir=DIR")
        overrides = [*overrides, f"hydra.sweep.dir={found}"]
        sweep_dir = Path(found)
    else:  # resolved once here (`${now:…}`), so the directory printed is the one Hydra writes
        sweep_dir = Path(str(hydra_cfg.sweep.dir))
        if not given_dir:
            overrides = [*overrides, f"hydra.sweep.dir={_quoted(str(sweep_dir))}"]
    print(f"sweep directory: {sweep_dir}", flush=True)
    stopped = _launch(SweepJob(verb=verb, model=model, cwd=str(Path.cwd()), resume=resume), choice + overrides,
                      config_dir)
    if stopped is not None and not list(sweep_dir.glob("*/error.json")):
        raise stopped
    if stopped is not None:  # e.g. Optuna when every trial failed: the failures are the story
        print(f"stpipe {verb}: {stopped}", file=sys.stderr)
    return _summary(sweep_dir)


def _as_hydra_needs(overrides: list[str], config_dir: Path, choice: list[str]) -> list[str]:
    """stpipe applies an override of a key the YAML does not write but the module's schema has
    (``model.modules.1.include_prompt=false``) as if written with ``+``; Hydra's multirun needs the ``+``."""
    from omegaconf import OmegaConf

    from stpipe.config.overrides import compose_config

    def group(o: str) -> bool:  # a config group choice (data=stsb-dev): Hydra's own, never a `+key`
        key = o.lstrip("+~").partition("=")[0]
        return "/" in key or (config_dir / key).is_dir()

    groups = [o for o in overrides if group(o) and "," not in o.partition("=")[2]]
    base, absent = compose_config(config_dir, choice + groups), object()  # with the data set etc. chosen
    out = []
    for o in overrides:
        key, eq, _ = o.partition("=")
        if (eq and not o.startswith(("+", "~")) and not group(o) and not key.startswith("hydra.")
                and OmegaConf.select(base, key, default=absent) is absent):
            o = "+" + o
        out.append(o)
    return out


def _quoted(value: str) -> str:
    """A value as a quoted Hydra override value (any path: spaces, commas, quotes)."""
    return "'" + value.replace("'", "\\'") + "'"


def _launch(job: SweepJob, overrides: list[str], config_dir: Path) -> StpipeError | None:
    """Hydra's multirun; the error (not raised) when the launcher or sweeper itself stopped."""
    from stpipe.config.hydra_quick import hydra_on, run_multirun
    from stpipe.errors import CommandError

    with hydra_on(config_dir):
        try:
            run_multirun(functools.partial(run_point, job), overrides)
        except Exception as exc:  # a launcher or sweeper that could not start or went down: not one point's failure
            return CommandError(f"the sweep stopped: {type(exc).__name__}: {exc}")
    return None


def _summary(sweep_dir: Path) -> int:
    """Print what each job of the sweep directory ended with (values escaped: one line each); 1 when some failed."""
    from stpipe.experiments.report import one_line, read_point

    jobs = sorted((d for d in sweep_dir.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name)) \
        if sweep_dir.is_dir() else []
    failed = [d for d in jobs if (d / "error.json").is_file()]
    ok = [d for d in jobs if (d / "metrics.json").is_file()]
    for d in failed:  # read as stpipe report reads it: a damaged error.json is "unreadable: …", not a traceback
        p = read_point(int(d.name), d)
        print(one_line(f"FAIL  point {d.name} ({' '.join(f'{k}={v}' for k, v in p.overrides.items())}): "
                       f"{p.error}"), file=sys.stderr)
    best = sweep_dir / "optimization_results.yaml"
    if best.is_file():
        print(f"best point ({best}):\n" + "\n".join("  " + one_line(ln) for ln in best.read_text().splitlines()))
    print(f"{len(ok)} of {len(jobs)} sweep points ok" + (f", {len(failed)} failed" if failed else "")
          + f"; results in {sweep_dir}", file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0
