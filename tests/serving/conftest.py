"""Fixtures of the serving tests: tiny models written as YAML definitions (an embedding model, a Router, a sparse
model, a CrossEncoder), their specs as ``stpipe serve`` composes them, and a real uvicorn server on a free port of
127.0.0.1 in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def model_files(tmp_path_factory, tiny_bert_dir, tiny_mlm_dir) -> dict[str, Path]:
    """YAML definitions of tiny models: ``emb`` (Transformer → Pooling), ``router`` (query: a saved
    StaticEmbedding; document: Transformer → Pooling), ``sparse`` (fill-mask Transformer → SpladePooling) and
    ``rr`` (a one-label CrossEncoder)."""
    import torch
    from test_cross_encoder import write_classifier

    from stpipe.modules.static import StaticEmbedding

    d = tmp_path_factory.mktemp("serve-models")
    torch.manual_seed(0)
    StaticEmbedding(str(tiny_bert_dir), embedding_dim=32).save(str(d / "static"))
    cls = write_classifier(d / "cls")
    files = {
        "emb": f"name: tiny-emb\nmodules:\n  - {{type: Transformer, model_name_or_path: {tiny_bert_dir}}}\n"
               "  - {type: Pooling, pooling_mode: mean}\n",
        "router": "name: tiny-router\nprompts: {query: '', document: ''}\nmodules:\n  - type: Router\n"
                  "    default_route: document\n    sub_modules:\n"
                  f"      query: [{{type: StaticEmbedding, load_from: {d / 'static'}}}]\n"
                  f"      document: [{{type: Transformer, model_name_or_path: {tiny_bert_dir}}}, {{type: Pooling}}]\n",
        "sparse": f"name: tiny-sparse\nmodel_type: SparseEncoder\nmodules:\n"
                  f"  - {{type: Transformer, model_name_or_path: {tiny_mlm_dir}, transformer_task: fill-mask}}\n"
                  "  - {type: SpladePooling, pooling_strategy: max}\n",
        "rr": f"name: tiny-rr\nmodel_type: CrossEncoder\nmodules:\n  - {{type: Transformer, model_name_or_path: {cls}, "
              "transformer_task: sequence-classification}\n",
    }
    out = {}
    for name, text in files.items():
        out[name] = d / f"{name}.yaml"
        out[name].write_text(text)
    return out


def specs_for(files: dict[str, Path], names: Sequence[str], extra: Sequence[str] = ()) -> tuple[list[Any], dict]:
    """The specs and settings ``stpipe serve`` makes for ``serve.models`` = ``names`` (each its file)."""
    from stpipe.commands.common import compose_checked
    from stpipe.serving.settings import check_settings, serve_overrides, served_models

    overrides = [*(f"+serve.models.{n}.model={files[n]}" for n in names), "device=cpu", *extra]
    composed = compose_checked(None, serve_overrides(overrides), "serve")
    settings = check_settings(composed)
    return served_models(composed, settings, None, overrides,
                         lambda m, o: compose_checked(m, o, "serve")), settings


class Running:
    """A uvicorn server in a thread: ``url``, ``app``; :meth:`stop`."""

    def __init__(self, app: Any, wait_ready: bool = True) -> None:
        import httpx
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status = httpx.get(self.url + "/health", timeout=2).status_code
                if status == 200 or (status == 503 and not wait_ready):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the test server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def served(model_files) -> Iterator[Running]:
    """One server for ``emb``, ``router``, ``sparse`` and ``rr`` (small limits: 8 inputs, 2,000-byte bodies)."""
    from stpipe.serving.app import create_app

    specs, settings = specs_for(model_files, ["emb", "router", "sparse", "rr"],
                                ["serve.limits.max_inputs=8", "serve.limits.max_body_bytes=2000",
                                 "serve.limits.max_input_chars=300", "serve.access_log=false"])
    running = Running(create_app(specs, settings))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def built(served) -> dict[str, Any]:
    """The server's own built models (the reference encodes use the same weights)."""
    return {n: m.model for n, m in served.app.state.serve.models.items()}
