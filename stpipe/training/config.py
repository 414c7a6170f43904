"""The training settings (the ``training`` node: ``conf/training/default.yaml`` + overrides) and every check
``stpipe train`` makes before any weight loads: the settings against ``schemas/training.schema.json``, the loss
node, the training data (its file read line by line), the loss's columns against the data's, ``router_mapping``
against the data's columns, the evaluation data set, and that ``accelerate`` is installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from stpipe.errors import ConfigError, Problem, UsageError

SCHEMA = "training.schema.json"
#: training.precision (schemas/training.schema.json)
TRAINING_PRECISIONS = ("fp32", "bf16", "fp16")
#: training.lr_scheduler: transformers' scheduler names offered
LR_SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")
TITLE = "invalid training settings"


@cache
def defaults() -> dict[str, Any]:
    """``conf/training/default.yaml`` as a dict (do not mutate)."""
    import yaml

    from stpipe.resources import conf_dir

    return yaml.safe_load((conf_dir() / "training" / "default.yaml").read_text(encoding="utf-8"))


def with_defaults(training: Any) -> Any:
    """The training settings as ``stpipe train`` runs them: ``training`` over ``conf/training/default.yaml`` (None:
    the defaults; anything but a mapping as given, for :func:`settings_problems` to name)."""
    if training is None:
        return defaults()
    return {**defaults(), **dict(training)} if isinstance(training, Mapping) else training


@cache
def _validator() -> Any:
    from stpipe.config.schema import NodeValidator, load_schema

    return NodeValidator(load_schema(SCHEMA))


def settings_problems(node: Any) -> list[Problem]:
    from stpipe.config.schema_problems import schema_problems

    if not isinstance(node, Mapping):
        return [Problem(code="schema.type", path=("training",), message="the training settings are a mapping",
                        hint="leave `training` to conf/training/default.yaml and override keys: training.epochs=2")]
    problems = schema_problems(_validator(), dict(node), ("training",), "the training settings")
    import re

    for key in ("learning_rate_mapping", "freeze"):
        for pattern in (node.get(key) or []):
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(Problem(code="training.regex", path=("training", key), message=f"{pattern!r} is "
                                        f"not a regular expression: {exc}", hint="escape dots as \\."))
    return problems


def require_accelerate() -> None:
    """transformers' Trainer runs on accelerate; without it, a UsageError naming the extra."""
    if importlib.util.find_spec("accelerate") is None:
        raise UsageError("stpipe train needs accelerate (transformers' Trainer runs on it), which is not installed: "
                         "pip install 'stpipe[train]'")


@dataclass
class TrainingPlan:
    """Everything checked before weights load: the settings, the loss node, the data, the evaluation data set."""

    settings: dict[str, Any]
    loss: dict[str, Any]
    data: Any  # TrainingData
    eval_data: Any  # DataConfig | None
    #: what ``training.yaml`` records where it differs from the above: the settings with environment values as
    #: their ``${oc.env:…}`` (keys ``training``, ``loss``, ``data_path``; see :meth:`Composed.run_record`)
    record: dict[str, Any] = field(default_factory=dict)

    def recorded(self) -> dict[str, Any]:
        """The ``training``, ``loss`` and ``data`` nodes of ``training.yaml`` (no environment value)."""
        data = {"name": self.data.name, "path": self.record.get("data_path", str(self.data.path)),
                "columns": self.data.columns, "rows": len(self.data.rows)}
        return {"training": dict(self.record.get("training", self.settings)),
                "loss": self.record.get("loss", self.loss), "data": data}


def record_of(saved_run: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    """:attr:`TrainingPlan.record` from a composition's env-free run record (``Composed.run_record()``): only
    the nodes where an environment value was put back as its interpolation."""
    out: dict[str, Any] = {}
    if saved_run.get("training") != run.get("training"):
        out["training"] = with_defaults(saved_run.get("training"))
    if saved_run.get("loss") != run.get("loss"):
        out["loss"] = saved_run.get("loss")
    saved_data, data = saved_run.get("data"), run.get("data")
    if isinstance(saved_data, Mapping) and isinstance(data, Mapping) and saved_data.get("path") != data.get("path"):
        out["data_path"] = saved_data.get("path")
    return out


def eval_config(value: Any) -> Any:
    """``training.eval_data`` as a checked DataConfig (its file read line by line), or None."""
    if value is None:
        return None
    from stpipe.experiments.data import TITLE as DATA_TITLE
    from stpipe.experiments.data import check_data, load_data_config

    cfg = load_data_config(value, base=("training", "eval_data"))
    problems = check_data(cfg)
    if problems:
        raise ConfigError(problems, title=DATA_TITLE)
    return cfg


def plan(training: Mapping[str, Any] | None, loss: Any, data: Any, *, data_source: str | None = None) -> TrainingPlan:
    """Check everything (see the module docstring) and return the plan; a ConfigError listing the problems."""
    from stpipe.training.data import read_training_data
    from stpipe.training.losses import TITLE as LOSS_TITLE
    from stpipe.training.losses import column_problems, loss_problems

    settings = with_defaults(training)
    problems = settings_problems(settings)
    if problems:
        raise ConfigError(problems, title=TITLE)
    problems = loss_problems(loss)
    if problems:
        raise ConfigError(problems, title=LOSS_TITLE)
    if isinstance(data, str):
        data = {"path": data}
    train_data = read_training_data(data, source=data_source)
    problems = column_problems(loss, train_data.columns)
    for column in settings.get("router_mapping") or {}:
        if column not in train_data.columns:
            problems.append(Problem(code="training.router_mapping", path=("training", "router_mapping", column),
                                    message=f"router_mapping names the column '{column}', which the data does not "
                                    f"have (columns: {', '.join(train_data.columns)})",
                                    hint="map the data's text columns to routes, e.g. {question: query}"))
    if problems:
        raise ConfigError(problems, title=LOSS_TITLE)
    return TrainingPlan(settings=settings, loss=dict(loss), data=train_data,
                        eval_data=eval_config(settings.get("eval_data")))
