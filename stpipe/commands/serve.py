"""``stpipe serve [MODEL] [host=127.0.0.1] [port=8000] [serve=NAME] [engine=ray]``: serve models over HTTP.

An OpenAI-compatible ``POST /v1/embeddings`` (the official ``openai`` client works unchanged), ``POST /v1/rerank``
for CrossEncoders, ``GET /v1/models``, ``/health`` and ``/metrics``, with dynamic batching (:mod:`stpipe.serving`;
docs/serving.md). Before anything is bound or built, everything is checked as by every verb: the serve settings
(``conf/serve/default.yaml`` or ``serve=NAME``; ``schemas/serve.schema.json``), each model's run settings and
definition (composed and validated — a bad model does not start, exit 2, with the reasons), the API keys the
settings name, and that the extra ``stpipe[serve]`` is installed. ``engine=ray`` deploys the same app on Ray Serve.
"""

from __future__ import annotations

from typing import Any

from stpipe.errors import ConfigError, UsageError


def check(composed: Any) -> None:
    """The serve settings of the serve command's composition (the models' own compositions carry none)."""
    if composed.run.get("serve") is not None:
        from stpipe.serving.settings import check_settings

        check_settings(composed)


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    from stpipe.commands.common import compose_checked
    from stpipe.serving.limits import load_api_keys
    from stpipe.serving.server import require_serve_extra
    from stpipe.serving.settings import check_settings, serve_overrides, served_models

    if "--multirun" in flags or "--explain" in flags:
        raise UsageError(f"stpipe serve takes no {' '.join(sorted(flags))}: it serves one configuration")
    require_serve_extra()
    composed = compose_checked(model, serve_overrides(overrides), "serve")
    settings = check_settings(composed)
    specs = served_models(composed, settings, model, overrides, lambda m, o: compose_checked(m, o, "serve"))
    _refuse_unservable(specs)
    keys = load_api_keys(settings["auth"], [f for s in specs for f in s.folders])
    if composed.run.get("engine") == "ray":
        from stpipe.serving.ray_serve import run_ray

        return run_ray(specs, settings, composed.run.get("ray") or {})
    from stpipe.serving.server import run as run_local

    return run_local(specs, settings, keys)


def _refuse_unservable(specs: list[Any]) -> None:
    """Run settings that ``stpipe serve`` does not apply per request must not be silently ignored."""
    from stpipe.errors import Problem

    problems = []
    for s in specs:
        run_ = s.composed.run
        if run_.get("precision", "float32") != "float32":
            problems.append(Problem(code="run.precision", path=("precision",), found=repr(run_["precision"]),
                                    message=f"model '{s.name}': stpipe serve answers float32 embeddings (the OpenAI "
                                            "API has no quantised form)", hint="drop the precision override"))
        if run_.get("engine") == "ray" and int(run_.get("workers") or 1) > 1:
            problems.append(Problem(code="run.workers", path=("workers",), found=repr(run_["workers"]),
                                    message="with engine=ray the replicas are serve.ray.num_replicas",
                                    hint="drop workers=; set serve.ray.num_replicas=N"))
        elif int(run_.get("workers") or 1) > 1:
            problems.append(Problem(code="run.workers", path=("workers",), found=repr(run_["workers"]),
                                    message="stpipe serve runs one model instance per process",
                                    hint="scale out with engine=ray serve.ray.num_replicas=N, or run several "
                                         "servers behind a load balancer"))
    if problems:
        raise ConfigError(problems, title="invalid run settings for stpipe serve")
