"""Run the app on uvicorn in this process (``stpipe serve``, engine=local).

uvicorn binds ``serve.host``:``serve.port`` (port 0: a free one), then the app's startup builds the models while
``/health`` answers 503. One line on stdout says where the server listens, one more when it is ready; the access
log (one JSON line per request) goes to stderr. SIGINT/SIGTERM: uvicorn stops accepting connections and lets the
requests in flight finish for up to ``serve.shutdown_timeout_s`` seconds, then the batchers drain and stop.
A model that fails to build stops the server; :func:`run` then raises the reason (exit 2).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from stpipe.errors import CommandError, StpipeError
from stpipe.serving.settings import ModelSpec

EXTRA = "serve"


def require_serve_extra() -> None:
    """CommandError naming the extra unless Starlette and uvicorn import."""
    missing = []
    for module in ("starlette", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise CommandError(f"stpipe serve needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                           f"not installed: pip install 'stpipe[{EXTRA}]'")


def _access_logging(enabled: bool) -> None:
    log = logging.getLogger("stpipe.serve.access")
    log.propagate = False
    if enabled and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO if enabled else logging.WARNING)
    errors = logging.getLogger("stpipe.serve")
    if not errors.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("stpipe serve: %(levelname)s %(message)s"))
        errors.addHandler(handler)
        errors.setLevel(logging.WARNING)
        errors.propagate = False


def describe(state: Any) -> str:
    parts = []
    for name, m in state.models.items():
        what = {"rerank": "rerank", "sparse": "sparse embeddings"}.get(m.kind, "embeddings")
        dim = f", {m.dimension}-d" if m.dimension and m.kind == "embeddings" else ""
        parts.append(f"{name} ({what}{dim})")
    return ", ".join(parts)


def run(specs: Sequence[ModelSpec], settings: Mapping[str, Any], keys: tuple[str, ...]) -> int:
    """Serve until interrupted; 0 after a clean shutdown. CommandError when a model fails to build."""
    import uvicorn

    from stpipe.serving.app import create_app

    _access_logging(bool(settings.get("access_log", True)))
    failure: list[BaseException] = []
    server_box: list[Any] = []

    def on_load_error(exc: BaseException) -> None:
        failure.append(exc)
        if server_box:
            server_box[0].should_exit = True

    def on_ready(state: Any) -> None:
        print(f"stpipe serve: ready: {describe(state)}", flush=True)

    app = create_app(specs, settings, keys, on_load_error=on_load_error, on_ready=on_ready)
    config = uvicorn.Config(app, host=settings["host"], port=int(settings["port"]), log_level="warning",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=settings["shutdown_timeout_s"],
                            server_header=False)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()  # a requested, graceful stop is a clean exit (0), not a re-raised signal

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.should_exit:
                return
            for server in self.servers:
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    print(f"stpipe serve: listening on http://{host}:{port} (auth: "
                          f"{'API key' if keys else 'none'}); loading {', '.join(s.name for s in specs)}",
                          flush=True)

    server = Server(config)
    server_box.append(server)
    if failure:  # failed before the server object existed
        server.should_exit = True
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind
        server.started = False
    if failure:
        exc = failure[0]
        if isinstance(exc, StpipeError):
            raise exc
        raise CommandError(f"a served model failed to build: {type(exc).__name__}: {exc}") from None
    if not server.started:
        raise CommandError(f"could not listen on {settings['host']}:{settings['port']} (is the port in use? "
                           "choose another with port=N)")
    print("stpipe serve: stopped", flush=True)
    return 0


__all__ = ["EXTRA", "describe", "require_serve_extra", "run"]
