"""``stpipe evaluate [MODEL] data=NAME [overrides]``: score a model on a data set and write its metrics.

``data=NAME`` picks ``conf/data/NAME.yaml`` (``data=stsb-dev``: the STS Benchmark dev split shipped with stpipe);
``data.path=FILE`` (and ``data.format`` where the file's suffix does not tell) evaluates any file in a supported
layout. The data set is checked line by line before any weight loads (:func:`check`; for a sweep, every point
before the first job). A single run writes ``metrics.json``, ``definition.yaml`` (the fully resolved model
definition) and ``run.yaml`` (the run settings) into ``out=DIR`` (default ``outputs/evaluate/<date>_<time>``);
in a sweep (``-m``) the sweep writes them into each job's directory. The run settings ``batch_size`` and
``truncate_dim`` apply as for ``stpipe encode``, and the main metric is what the job returns
to the sweeper (Optuna maximises it).

Speed beside quality (:mod:`stpipe.experiments.throughput`): the metrics also hold ``throughput`` (texts/s: the
evaluation's own encode calls replayed after the evaluation, which warmed the model up, with ``batch_size`` /
``max_batch_tokens``) and ``model_size_mb``. ``backend=onnx|openvino`` (with ``quantize``, ``optimize``,
``calibration``) evaluates an export of the model made in the job and cached by its settings
(:mod:`stpipe.commands.export_settings`), so ``stpipe evaluate -m backend=… quantize=… threads=…`` is a
speed–quality sweep that ``stpipe report … best=fastest within=0.01`` reads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stpipe.commands import export_settings
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
    backend = composed.run.get("backend")
    export_settings.check(composed.run, None if backend in (None, "torch") else backend, "backend")


def job(composed: Any, job_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate once, or as one job of a sweep; returns ``{"main_metric", "metrics", …}``."""
    import yaml

    from stpipe.commands.sweep import write_json
    from stpipe.config.run import show_progress
    from stpipe.experiments import throughput
    from stpipe.experiments.evaluators import evaluate, render_result

    cfg = data_config(composed)
    run_ = composed.run
    pipe = pipeline(composed)
    backend = run_.get("backend")
    export: dict[str, Any] = {}
    if backend not in (None, "torch"):
        import stpipe

        t = time.perf_counter()
        where, reused = export_settings.cached_export(pipe, composed.definition, run_, backend)
        export = {"export_dir": str(where), "export_reused": reused,
                  "export_seconds": round(time.perf_counter() - t, 3)}
        print(f"{'reused' if reused else 'made'} the {backend} export {where}")
        pipe = stpipe.load(str(where))
    t0 = time.perf_counter()
    truncate = run_.get("truncate_dim")  # the run setting, as for encode (the model's own applies too)
    batch_size = run_.get("batch_size") or 32
    with pipe.truncate_embeddings(truncate if truncate is not None else pipe.truncate_dim):
        with throughput.recording(pipe) as calls:
            result = evaluate(pipe, cfg, batch_size=batch_size, show_progress_bar=show_progress(run_))
        speed = throughput.measure(pipe, calls, batch_size=batch_size, max_batch_tokens=run_.get("max_batch_tokens"))
    seconds = round(time.perf_counter() - t0, 3)
    if speed is not None:
        result["metrics"]["throughput"] = speed["throughput"]
    result["metrics"]["model_size_mb"] = throughput.model_size_mb(pipe)
    result.update(export)
    if export and job_dir is not None:  # a sweep's metrics.json keeps the metrics alone: the export beside it
        write_json(job_dir / "export.json", export)
    say(f"{pipe.name or 'model'} on {result.get('data')}:\n{render_result(result)}", job_dir)
    if job_dir is None:  # a single run writes its own record (a sweep writes each job's)
        out = Path(composed.run.get("out") or Path("outputs", "evaluate", time.strftime("%Y-%m-%d_%H-%M-%S")))
        out.mkdir(parents=True, exist_ok=True)
        (out / "definition.yaml").write_text(yaml.safe_dump(composed.definition, sort_keys=False), encoding="utf-8")
        (out / "run.yaml").write_text(yaml.safe_dump(composed.run_record(), sort_keys=False), encoding="utf-8")
        write_json(out / "metrics.json", {"verb": "evaluate", "status": "ok", **result, "seconds": seconds})
        print(f"wrote {out / 'metrics.json'}")
    return result
