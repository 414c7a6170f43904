"""``stpipe serve engine=ray``: the same app deployed on Ray Serve (the extra ``stpipe[ray]``).

:func:`deployment` wraps :func:`stpipe.serving.app.create_app` in a Ray Serve deployment whose replicas each build
the models once and batch their own requests; ``serve.ray.num_replicas``, ``autoscaling_config`` and
``ray_actor_options`` are passed through to ``serve.deployment`` unchanged. The models were validated by the
command before this runs; each replica composes nothing, it builds the validated definitions it was given (their
files must be reachable from every node: the same machine or a shared file system). API keys are not shipped to
the replicas: each replica reads them itself from the same variable or file (which must exist on every node), so
no key passes through Ray's object store or logs. ``ray.address`` (the run setting) joins a running cluster;
without it a local Ray starts (``ray.num_cpus``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from stpipe.errors import CommandError
from stpipe.serving.settings import ModelSpec

EXTRA = "ray"


def require_ray_serve() -> Any:
    try:
        from ray import serve
    except ImportError as exc:
        raise CommandError(f"engine=ray needs Ray Serve ({exc.name or exc} is missing): "
                           f"pip install 'stpipe[{EXTRA}]'") from None
    return serve


def deployment_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``serve.deployment`` from ``serve.ray`` (null values left out).

    >>> deployment_options({"ray": {"num_replicas": 2, "autoscaling_config": None, "ray_actor_options": {}}})
    {'name': 'stpipe', 'num_replicas': 2}
    """
    ray_opts = dict(settings.get("ray") or {})
    out: dict[str, Any] = {"name": "stpipe"}
    if ray_opts.get("autoscaling_config"):
        out["autoscaling_config"] = dict(ray_opts["autoscaling_config"])
    elif ray_opts.get("num_replicas") is not None:
        out["num_replicas"] = int(ray_opts["num_replicas"])
    if ray_opts.get("ray_actor_options"):
        out["ray_actor_options"] = dict(ray_opts["ray_actor_options"])
    return out


class StpipeReplica:
    """One Ray Serve replica: the app over its own copy of the models (built at the app's startup)."""

    def __init__(self, specs: Sequence[ModelSpec], settings: Mapping[str, Any]) -> None:
        self.specs, self.settings = list(specs), dict(settings)

    def __serve_build_asgi_app__(self) -> Any:  # noqa: N807 - Ray Serve's hook name
        from stpipe.serving.app import create_app
        from stpipe.serving.limits import load_api_keys

        keys = load_api_keys(self.settings["auth"], [f for s in self.specs for f in s.folders])
        return create_app(self.specs, self.settings, keys)


def deployment(specs: Sequence[ModelSpec], settings: Mapping[str, Any]) -> Any:
    """The bound Ray Serve application (``serve.run`` starts it); builds nothing and starts no cluster."""
    serve = require_ray_serve()
    cls = serve.ingress()(StpipeReplica)
    return serve.deployment(**deployment_options(settings))(cls).bind(list(specs), dict(settings))


def run_ray(specs: Sequence[ModelSpec], settings: Mapping[str, Any], ray_settings: Mapping[str, Any]) -> int:
    """Start (or join) Ray, deploy, and block until interrupted; then shut the application down."""
    serve = require_ray_serve()
    import ray

    app = deployment(specs, settings)
    started = not ray.is_initialized()
    if started:
        if ray_settings.get("address"):
            ray.init(address=ray_settings["address"], logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=ray_settings.get("num_cpus"), include_dashboard=False, logging_level=logging.WARNING)
    try:
        serve.start(http_options={"host": settings["host"], "port": int(settings["port"])})
        serve.run(app, name="stpipe", route_prefix="/", blocking=False)
        print(f"stpipe serve: Ray Serve on http://{settings['host']}:{settings['port']} "
              f"({deployment_options(settings)}); loading {', '.join(s.name for s in specs)}", flush=True)
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        try:  # a second Ctrl-C during the clean-up leaves the rest to Ray's own exit handlers
            serve.delete("stpipe")
            serve.shutdown()
            if started:
                ray.shutdown()
        except KeyboardInterrupt:
            pass
    print("stpipe serve: stopped", flush=True)
    return 0


__all__ = ["StpipeReplica", "deployment", "deployment_options", "require_ray_serve", "run_ray"]
