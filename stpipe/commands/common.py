"""What the verbs share: composition plus the run settings' file checks, sweeps (``-m``), building the pipeline."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stpipe.errors import CommandError, ConfigError, StpipeError


class SweepInvalid(StpipeError):
    """Some point of a sweep is invalid; no job was started (the points were listed already)."""


def compose_checked(model: str | None, overrides: list[str], verb: str = "validate") -> Any:
    """The composed (and checked) run configuration and model definition — a saved model directory becomes a
    definition in compose(), so `model.*` overrides apply to it like to a YAML file — plus, for ``verb``, the
    run settings' needs from the machine (inputs file, output path, device)."""
    from stpipe.commands import verb_groups
    from stpipe.config.compose import compose
    from stpipe.config.run import run_file_problems

    composed = compose(model, overrides, groups=verb_groups(verb))
    problems = run_file_problems(composed.run, verb, composed.run_sources)
    if problems:
        raise ConfigError(problems, title="invalid run settings")
    verb_checks(composed, verb)
    return composed


def verb_checks(composed: Any, verb: str) -> None:
    """The verb module's own checks of a composed point (``check(composed)``, e.g. ``stpipe evaluate``'s data
    set), before any weight loads — for a single run and for every sweep point before the first job."""
    import importlib

    from stpipe.commands import VERB_MODULES

    check = getattr(importlib.import_module(f"stpipe.commands.{VERB_MODULES[verb]}"), "check", None)
    if check is not None:
        check(composed)


def pipeline(composed: Any) -> Any:
    """Validate and build the composed definition (:func:`stpipe.builder.composed.build_composed`; imported
    here, not at the top, so that verbs that build nothing never import torch)."""
    from stpipe.builder.composed import build_composed

    return build_composed(composed)


def apply_threads(threads: int | None) -> int:
    """:func:`stpipe.builder.composed.apply_threads` (torch imported only when a verb runs a model)."""
    from stpipe.builder.composed import apply_threads as apply

    return apply(threads)


def say(text: str, job_dir: Path | None = None) -> None:
    """Print a block of lines in one write; in a sweep's job each line carries the point's label (``[N] …``, as
    the job's first line), so parallel jobs (joblib, Ray) whose blocks interleave stay readable."""
    if job_dir is not None:
        text = "\n".join(f"[{job_dir.name}] {line}" for line in text.splitlines())
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def sweep(model: str | None, overrides: list[str], verb: str = "validate") -> list[tuple[list[str], Any]]:
    """Every point of a Hydra sweep (``-m``), composed and validated — model definition, run settings and, for
    ``verb``, what they need from the machine — before the first job runs; if any point is invalid, all failing
    points are listed with their overrides and nothing runs (exit 2)."""
    from dataclasses import replace

    from stpipe.commands import verb_groups
    from stpipe.config.compose import sweep_points
    from stpipe.config.run import run_file_problems
    from stpipe.config.sweep_limits import Progress

    shown: list[Progress] = []

    def progress(done: int, total: int) -> None:  # a line every few seconds while a big sweep is checked
        shown[:] = shown or [Progress(total)]
        shown[0](done)

    points = sweep_points(model, overrides, groups=verb_groups(verb), progress=progress)
    for i, (point, composed) in enumerate(points):
        if isinstance(composed, ConfigError):
            continue
        problems = run_file_problems(composed.run, verb, composed.run_sources)
        if not problems:
            try:
                verb_checks(composed, verb)
            except ConfigError as exc:
                problems = exc.problems
        if problems:
            label = f"sweep point {i} ({' '.join(o for o in point if o not in overrides)})"
            points[i] = (point, ConfigError([replace(p, source=f"{label}; {p.source}" if p.source else label)
                                             for p in problems], title=f"invalid run settings ({label})"))
    failing = [i for i, (_, c) in enumerate(points) if isinstance(c, ConfigError)]
    for i, (point, composed) in enumerate(points):
        point = [o for o in point if o not in overrides]  # what this point sweeps
        if isinstance(composed, ConfigError):
            print(f"FAIL  sweep point {i}: {' '.join(point)}\n"
                  + "\n".join("      " + ln for ln in composed.render().splitlines()), file=sys.stderr)
        else:
            print(f"ok    sweep point {i}: {' '.join(point)}")
    print(f"{len(points) - len(failing)} of {len(points)} sweep points valid", file=sys.stderr if failing else None)
    if failing:
        raise SweepInvalid(f"{len(failing)} of {len(points)} sweep points are invalid; no job was started")
    return points


def each_job(model: str | None, overrides: list[str], flags: set[str], job: Callable[[Any, Path | None], Any],
             verb: str) -> int:
    """Run ``job(composed, None)`` once, or — with ``-m`` — every sweep point through Hydra's multirun
    (:func:`stpipe.commands.sweep.multirun`: all points checked first; each job calls the verb module's
    ``job(composed, job_dir)``, which may return metrics ``{"main_metric": NAME | None, "metrics": {…}}``)."""
    if "--multirun" not in flags:
        job(compose_checked(model, overrides, verb), None)
        return 0
    from stpipe.commands.sweep import multirun

    return multirun(model, overrides, verb)


def read_lines(inputs: Any) -> tuple[list[str], Path, str]:
    """The lines of a small inputs file read whole (``predict`` pairs, ``rank`` documents), its directory and its
    name for messages; ``inputs`` is the run setting (``inputs=FILE`` is stored as ``inputs.path``), None or '-'
    reads stdin. ``encode`` streams its inputs instead (:mod:`stpipe.corpus`)."""
    if isinstance(inputs, dict) or hasattr(inputs, "get"):
        inputs = inputs.get("path")
    if inputs in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise CommandError("no inputs: give inputs=FILE or pipe the inputs to stdin")
        try:
            return sys.stdin.read().splitlines(), Path.cwd(), "<stdin>"
        except UnicodeDecodeError as exc:
            raise CommandError(f"<stdin>: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                               f"{exc.start})") from None
    path = Path(inputs)
    if not path.is_file():
        raise CommandError(f"inputs file '{inputs}' does not exist")
    try:
        return path.read_text(encoding="utf-8").splitlines(), path.parent, str(path)
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise CommandError(f"{path}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save the inputs "
                           "file as UTF-8") from None
    except OSError as exc:
        raise CommandError(f"inputs file '{inputs}': cannot read it: {exc.strerror or exc}") from None


def in_job_dir(path: str | None, job_dir: Path | None) -> str | None:
    """Where a sweep job writes ``path`` (``output=``, ``out=``): a relative path inside the job's directory
    (``<sweep dir>/3/e.npy``), an absolute one numbered by the point (``/tmp/e.3.npy``; a directory: ``out/3``)."""
    if path is None or job_dir is None:
        return path
    if not Path(path).is_absolute():
        return str(job_dir / path)
    return with_index(path, int(job_dir.name) if job_dir.name.isdigit() else None)


def with_index(path: str | None, index: int | None) -> str | None:
    """``e.npy`` → ``e.3.npy`` for sweep point 3 (a directory: ``out/3``)."""
    if path is None or index is None:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}.{index}{p.suffix}")) if p.suffix else str(p / str(index))


def schema_url() -> str:
    from stpipe.resources import schemas_dir

    return (schemas_dir() / "pipeline.schema.json").resolve().as_uri()


def out_override(overrides: list[str], usage: str, what: str) -> str | None:
    """The value of ``out=…``, the only override of the verbs that read files a run wrote (``stpipe report``,
    ``stpipe merge``); None without it; a CommandError naming ``out=WHAT`` and the usage for any other."""
    out = None
    for item in overrides:
        key, _, value = item.partition("=")
        if key != "out" or not value:
            raise CommandError(f"the only override is out={what} (got '{item}'); {usage}")
        out = value
    return out
