"""``stpipe validate [MODEL] [--explain] [-m]``: check a model definition (and the run settings) without weights.

The run settings include the training settings when an override names them (``training.epochs=2``): the
``training`` group is composed for ``stpipe train`` only otherwise (``GROUPS`` of the verb modules)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from stpipe.commands.common import compose_checked
from stpipe.errors import ConfigError


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    from stpipe.config.validate import inspect_definition

    if "--multirun" in flags:  # every point validated first, then one Hydra job each (definition.yaml, run.yaml)
        from stpipe.commands.sweep import multirun

        return multirun(model, overrides, "validate")
    composed = compose_checked(model, overrides)
    report = inspect_definition(composed.definition, sources=composed.sources, base_dir=composed.base_dir)
    if report.errors:
        raise ConfigError(report.problems)
    for p in report.warnings:  # printed here, as a short report (not through Python's warnings machinery)
        print(p.render(), file=sys.stderr)
    n = len(report.warnings)
    print(f"ok: {model or composed.definition.get('name') or 'the model'} is a valid model definition"
          + (f" ({n} warning{'s' if n != 1 else ''})" if n else ""))
    if "--explain" in flags:
        import yaml

        from stpipe.config.validate import explain

        print("\n# resolved configuration")
        print(yaml.safe_dump(composed.definition, sort_keys=False).rstrip())
        print("\n" + explain(composed.definition, base_dir=composed.base_dir))
    return 0


def check(composed: Any) -> None:
    """The training settings, where the composition has them (an override names ``training``: ``stpipe validate``
    leaves the group out otherwise) — against ``schemas/training.schema.json``, as ``stpipe train`` checks them;
    no torch. The loss and the data sets are ``stpipe train``'s and ``stpipe evaluate``'s to check."""
    training = composed.run.get("training")
    if training is None:
        return
    from stpipe.training.config import TITLE, settings_problems, with_defaults

    problems = settings_problems(with_defaults(training))
    if problems:
        raise ConfigError(composed.run_sources.apply(problems), title=TITLE)


def job(composed: Any, job_dir: Path | None = None) -> dict[str, Any]:
    """One job of a ``validate -m`` sweep: the point was composed and validated by the sweep; no metrics."""
    return {"main_metric": None, "metrics": {}}
