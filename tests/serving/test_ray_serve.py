"""``engine=ray``: the Ray Serve deployment is built from the serve settings (replicas, autoscaling and actor
options passed through) around the same app — checked without starting a cluster (starting Ray Serve takes
longer than the test budget allows)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray.serve", reason="the ray extra (ray[serve]) is part of dev")


def test_the_deployment_carries_the_settings_and_the_models(model_files):
    import ray

    from stpipe.serving.ray_serve import StpipeReplica, deployment

    from .conftest import specs_for

    specs, settings = specs_for(model_files, ["emb", "rr"], [
        "serve.ray.num_replicas=null", "+serve.ray.autoscaling_config.min_replicas=1",
        "+serve.ray.autoscaling_config.max_replicas=3", "+serve.ray.ray_actor_options.num_cpus=2"])
    app = deployment(specs, settings)
    d = app._bound_deployment
    assert d.name == "stpipe"
    assert d._deployment_config.autoscaling_config.max_replicas == 3
    assert d.ray_actor_options["num_cpus"] == 2
    replica_args = app._bound_deployment.init_args
    assert [s.name for s in replica_args[0]] == ["emb", "rr"] and replica_args[1]["limits"] == settings["limits"]
    assert not ray.is_initialized()  # nothing was started
    asgi = StpipeReplica(specs, settings).__serve_build_asgi_app__()  # what each replica serves: the same app
    assert sorted(asgi.state.serve.models) == ["emb", "rr"]
