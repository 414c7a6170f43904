"""``stpipe evaluate [MODEL] data=NAME [overrides]``: score a model on a data set and write its metrics.

``data=NAME`` picks ``conf/data/NAME.yaml`` (``data=stsb-dev``: the STS Benchmark dev split shipped with stpipe);
``data.path=FILE`` (and ``data.format`` where the file's suffix does not tell) evaluates any file in a supported
layout. The data set is checked line by line before any weight loads (:func:`check`; for a sweep, every point
before the first job). A single run writes ``metrics.json``, ``definition.yaml`` (the fully resolved model
definition) and ``run.yaml`` (the run settings) into ``out=DIR`` (default ``outputs/evaluate/<date>_<time>``);
in a sweep (``-m``) the sweep writes them into each job's directory. The run settings ``batch_size`` and
``truncate_dim`` apply as for ``stpipe encode``, and the main metric is what the job returns
to the sweeper (Optuna maximises it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stpipe.commands.common import each_job, pipeline, say
from stpipe.errors import ConfigError

#: the optional config groups this verb reads (the others are left out of its composition)
GROUPS = ("data",)


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    return each_job(model, overrides, flags, job, "evaluate")


def data_config(composed: Any) -> Any:
    """The composed ``data`` node as a checked :class:`~stpipe.experiments.data.DataConfig` (reads no file)."""
    from stpipe.experiments.data import data_config_from

    sources = {path[1:]: src for path, src in (composed.run_sources or {}).items() if path[:1] == ("data",)}
    return data_config_from(composed.run.get("data"), sources=sources)


def check(composed: Any) -> None:
    """ConfigError unless the data set is well-formed: its config, then its file(s), line by line."""
    from stpipe.experiments.data import TITLE, check_data

    problems = check_data(data_config(composed))
    if problems:
        raise ConfigError(problems, title=TITLE)


def job(composed: Any, job_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate once, or as one job of a sweep; returns ``{"main_metric", "metrics", …}``."""
    import yaml

    from stpipe.commands.sweep import write_json
    from stpipe.config.run import show_progress
    from stpipe.experiments.evaluators import evaluate, render_result

    cfg = data_config(composed)
    pipe = pipeline(composed)
    t0 = time.perf_counter()
    truncate = composed.run.get("truncate_dim")  # the run setting, as for encode (the model's own applies too)
    with pipe.truncate_embeddings(truncate if truncate is not None else pipe.truncate_dim):
        result = evaluate(pipe, cfg, batch_size=composed.run.get("batch_size") or 32,
                          show_progress_bar=show_progress(composed.run))
    seconds = round(time.perf_counter() - t0, 3)
    say(f"{pipe.name or 'model'} on {result.get('data')}:\n{render_result(result)}", job_dir)
    if job_dir is None:  # a single run writes its own record (a sweep writes each job's)
        out = Path(composed.run.get("out") or Path("outputs", "evaluate", time.strftime("%Y-%m-%d_%H-%M-%S")))
        out.mkdir(parents=True, exist_ok=True)
        (out / "definition.yaml").write_text(yaml.safe_dump(composed.definition, sort_keys=False), encoding="utf-8")
        (out / "run.yaml").write_text(yaml.safe_dump(composed.run, sort_keys=False), encoding="utf-8")
        write_json(out / "metrics.json", {"verb": "evaluate", "status": "ok", **result, "seconds": seconds})
        print(f"wrote {out / 'metrics.json'}")
    return result
