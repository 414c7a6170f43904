"""``hydra/sweeper=optuna`` in a sweep: the direction follows the metric the jobs return, unless the user set it.

Optuna's Hydra sweeper minimises by default, which for a correlation or nDCG picks the worst point. stpipe adds
``hydra.sweeper.direction=maximize`` (or ``minimize`` for a loss, an error, a time:
:func:`stpipe.experiments.metrics.direction`) when neither an override nor an ``+experiment=`` preset sets it.
"""

from __future__ import annotations

import logging
from pathlib import Path

#: loggers whose set-up lines (plugin registration, study name, storage, sampler) only repeat the command line;
#: stpipe prints the direction and, at the end, the best point itself
QUIET = ("alembic", "optuna", "hydra_plugins.hydra_optuna_sweeper")


def quieter() -> None:
    """Optuna's and its plugins' set-up lines down to warnings (Optuna resets its level when first imported)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def direction_given(overrides: list[str], config_dir: Path) -> bool:
    """Whether the user chose Optuna's direction: an override, or an ``+experiment=`` preset that sets it."""
    for o in overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key == "hydra.sweeper.direction":
            return True
        f = config_dir / "experiment" / f"{value}.yaml"
        if key == "experiment" and f.is_file() and "direction:" in f.read_text(encoding="utf-8"):
            return True
    return False


def with_direction(overrides: list[str], config_dir: Path, verb: str, sweeper: str = "optuna") -> list[str]:
    """For ``sweeper`` optuna (others: ``overrides`` unchanged): ``overrides`` plus the direction of the metric
    the jobs return (``metric=NAME``, else the verb's main metric: higher is better for every one of them), said
    in one line; unchanged when the user set it."""
    from stpipe.experiments.metrics import direction

    if sweeper != "optuna":
        return overrides
    quieter()
    if direction_given(overrides, config_dir):
        return overrides
    metric = next((o.partition("=")[2] for o in overrides if o.lstrip("+").startswith("metric=")), None)
    way = direction(metric)
    print(f"optuna: {way} {metric or f'the main metric of stpipe {verb}'} (set hydra.sweeper.direction= to "
          "choose)", flush=True)
    return [*overrides, f"hydra.sweeper.direction={way}"]
