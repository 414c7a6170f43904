"""``stpipe train [MODEL] data=NAME loss=NAME [training.KEY=VALUE …] [out=DIR]``: fine-tune a model.

``data=NAME`` picks the training data (``conf/data/NAME.yaml``; ``data.path=FILE``, ``data.columns=…`` for your
own file), ``loss=NAME`` the loss (``conf/loss/NAME.yaml``), ``training.*`` the settings
(``conf/training/default.yaml``: learning rate, ``learning_rate_mapping``, ``router_mapping``, batch size, epochs,
``eval_data``, checkpoints, early stopping …). Everything is checked before any weight loads (:func:`check`: the
settings, the loss, the data file line by line, the loss's columns against the data's; for a sweep, every point).

The output directory (``out=DIR``, default ``outputs/train/<date>_<time>``; in a sweep the job's directory) gets
``checkpoint-N/`` (a sentence-transformers model plus the Trainer's state), ``model/`` (the final model),
``training.yaml`` (the resolved settings), ``definition.yaml``, ``run.yaml``, ``metrics.jsonl``, ``training.png``
and ``metrics.json``. Rerunning the same command with the same ``out=`` resumes from the last checkpoint, or, when
that run finished, says so and changes nothing; other settings there are refused unless ``overwrite=force``
(:mod:`stpipe.training.out_dir`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stpipe.commands.common import each_job, pipeline, say

#: the optional config groups this verb reads (the others are left out of its composition)
GROUPS = ("training", "loss", "data")


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    return each_job(model, overrides, flags, job, "train")


def _plan(composed: Any) -> Any:
    from stpipe.training.config import plan, record_of, require_accelerate

    require_accelerate()
    run_ = composed.run
    src = composed.run_sources.lookup(("data",)) if composed.run_sources is not None else None
    p = plan(run_.get("training"), run_.get("loss"), run_.get("data"), data_source=src)
    p.record = record_of(composed.run_record(), run_)  # training.yaml: environment values as ${oc.env:…}
    return p


def check(composed: Any) -> None:
    """A ConfigError (or UsageError) unless the training can start: see :func:`stpipe.training.config.plan`."""
    _plan(composed)


def output_dir(composed: Any, job_dir: Path | None) -> Path:
    from stpipe.commands.common import in_job_dir

    out = composed.run.get("out")
    if job_dir is not None:
        return Path(in_job_dir(out, job_dir)) if out else job_dir
    return Path(out or Path("outputs", "train", time.strftime("%Y-%m-%d_%H-%M-%S")))


def job(composed: Any, job_dir: Path | None = None) -> dict[str, Any]:
    """Train once, or as one job of a sweep; returns ``{"main_metric", "metrics"}`` (the final evaluation)."""
    import yaml

    from stpipe.commands.sweep import write_json
    from stpipe.files import atomic_write
    from stpipe.training.out_dir import claim
    from stpipe.training.run import finished_message, fit

    p = _plan(composed)
    out = output_dir(composed, job_dir)
    in_job = job_dir is not None and out == job_dir  # the sweep wrote definition.yaml and run.yaml there already
    done = claim(out, composed.definition, p, start_clean=composed.run.get("overwrite") == "force",
                 written=("definition.yaml", "run.yaml") if in_job else ())
    if done is not None:
        print(finished_message(out, done), flush=True)
        return done
    for name, data in (("definition.yaml", composed.definition), ("run.yaml", composed.run_record())):
        with atomic_write(out / name, "w", encoding="utf-8") as fh:
            fh.write(yaml.safe_dump(data, sort_keys=False))
    pipe = pipeline(composed)
    result = fit(pipe, p, out, device=composed.run.get("device"), claimed=True)
    result.pop("trainer", None)
    line = ", ".join(f"{k} {v:.4f}" if v is not None else f"{k} undefined" for k, v in result["metrics"].items()
                     if k != "global_step")
    say(f"trained {pipe.name or 'model'}: {result['global_step']} steps; {line}\nmodel saved to {result['model']}",
        job_dir)
    if job_dir is None:
        groups = [{**g, "names": len(g["names"])} for g in result["param_groups"]]
        write_json(out / "metrics.json", {"verb": "train", "status": "ok", **result, "param_groups": groups})
    return result
