"""The HTTP app (Starlette, ASGI): ``POST /v1/embeddings``, ``POST /v1/rerank``, ``GET /v1/models``,
``GET /health``, ``GET /metrics`` over the served models — the same app runs under uvicorn (``stpipe serve``) and
in each Ray Serve replica (``engine=ray``).

At startup (the ASGI lifespan) a thread builds the models one by one; until a model is built its requests get 503
(``Retry-After: 1``) and ``/health`` answers 503 ``{"status": "loading"}``, then 200 ``{"status": "ok"}``. A model
that fails to build is reported through ``on_load_error`` (the server then stops, exit 2). Every request is
answered with JSON: a :class:`~stpipe.serving.protocol.HTTPError` with its status, 404/405 for unknown paths and
methods, 500 ``internal error`` (logged with its traceback, never with the request's texts) for a bug. A handler
whose client disconnects stops waiting; its queued work is dropped (:mod:`stpipe.serving.batching`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from stpipe.serving import protocol
from stpipe.serving.batching import Batcher, Overloaded
from stpipe.serving.limits import OPEN_PATHS, check_key, cors_middleware, read_body
from stpipe.serving.metrics import AccessLog, Metrics
from stpipe.serving.model import ServedModel
from stpipe.serving.protocol import HTTPError
from stpipe.serving.settings import ModelSpec

LOG = logging.getLogger("stpipe.serve")


class ClientGone(Exception):
    """The client disconnected while its request waited."""


class ServeState:
    """The served models, their batchers and the metrics; shared by the handlers."""

    def __init__(self, specs: Sequence[ModelSpec], settings: Mapping[str, Any], keys: tuple[str, ...] = (),
                 on_load_error: Callable[[BaseException], None] | None = None,
                 on_ready: Callable[[ServeState], None] | None = None) -> None:
        self.models = {s.name: ServedModel(s) for s in specs}
        self.settings = settings
        self.limits = dict(settings["limits"])
        self.keys = keys
        self.metrics = Metrics()
        self.batchers: dict[str, Batcher] = {}
        self.counters: dict[str, ThreadPoolExecutor] = {}  # one token-counting thread per model
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self.on_load_error, self.on_ready = on_load_error, on_ready
        self.created = int(time.time())
        self.metrics.gauge("stpipe_model_ready", lambda: {(("model", n),): float(n in self.batchers)
                                                          for n in self.models})
        self.metrics.gauge("stpipe_queued_inputs", lambda: {(("model", n),): float(b.queued_inputs)
                                                            for n, b in self.batchers.items()})

    def load(self) -> None:
        """Build every model, then start its batcher (runs in a thread at startup)."""
        batching = self.settings["batching"]
        try:
            for name, m in self.models.items():
                m.load()
                self.counters[name] = ThreadPoolExecutor(1, thread_name_prefix=f"stpipe-tokens-{name}")
                process = m.run_rerank if m.kind == "rerank" else m.run_embeddings

                def observe(metric: str, value: float, name: str = name) -> None:
                    self.metrics.observe(f"stpipe_{metric}", value, {"model": name})

                self.batchers[name] = Batcher(process, max_batch_tokens=batching["max_batch_tokens"],
                                              max_wait_ms=batching["max_wait_ms"],
                                              max_queued=self.limits["max_queued_inputs"], observe=observe, name=name)
                LOG.info("model %s built (%s)", name, m.kind)
        except BaseException as exc:  # noqa: BLE001 - reported to the server, which stops with the reason
            self.failed = exc
            if self.on_load_error is not None:
                self.on_load_error(exc)
            return
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready(self)

    def close(self, timeout: float | None = None) -> None:
        for b in self.batchers.values():
            b.close(timeout)
        for ex in self.counters.values():
            ex.shutdown(wait=False)

    def model(self, name: str) -> ServedModel:
        if name not in self.models:
            raise HTTPError(404, f"model '{name}' is not served here (served: {', '.join(self.models)})",
                            param="model", code="model_not_found")
        if name not in self.batchers:
            raise HTTPError(503, f"model '{name}' is still loading; retry shortly" if self.failed is None else
                            f"model '{name}' failed to load", code="model_loading", headers={"Retry-After": "1"})
        return self.models[name]


async def _until_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unless_gone(receive: Any, work: Any) -> Any:
    """``await work`` unless the client disconnects first: then the work is cancelled and ClientGone raised."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not task.done():
        task.cancel()
        raise ClientGone()
    return task.result()


async def _queued(state: ServeState, m: ServedModel, receive: Any, key: Any, payload: Any, texts: list[Any],
                  task: str | None) -> tuple[Any, int]:
    loop = asyncio.get_running_loop()
    counts = await loop.run_in_executor(state.counters[m.name], m.count_tokens, texts, task)
    tokens = sum(counts)
    state.metrics.inc("stpipe_inputs_total", {"model": m.name}, len(texts))
    state.metrics.inc("stpipe_tokens_total", {"model": m.name}, tokens)
    try:
        result = await _unless_gone(receive, state.batchers[m.name].submit(key, payload, tokens, len(texts)))
    except Overloaded as exc:
        raise HTTPError(503, f"the server is busy: {exc}; retry shortly", code="overloaded",
                        headers={"Retry-After": "1"}) from None
    except ValueError as exc:  # what the model refuses (checked inputs rarely reach here)
        raise HTTPError(422, str(exc), code="invalid_input") from None
    return result, tokens


def create_app(specs: Sequence[ModelSpec], settings: Mapping[str, Any], keys: tuple[str, ...] = (), *,
               on_load_error: Callable[[BaseException], None] | None = None,
               on_ready: Callable[[ServeState], None] | None = None) -> Any:
    """The ASGI app serving ``specs`` (validated models, built at startup) with ``settings`` (the serve node,
    with defaults) and the accepted API ``keys``. ``app.state.serve`` is the :class:`ServeState`."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    state = ServeState(specs, settings, keys, on_load_error, on_ready)
    limits = state.limits

    async def start(request: Request) -> None:
        if request.url.path not in OPEN_PATHS:
            check_key(request.headers, state.keys)

    async def embeddings(request: Request) -> Response:
        await start(request)
        req = protocol.embeddings_request(
            protocol.parse_json(await read_body(request.receive, request.headers, limits["max_body_bytes"])), limits)
        m = state.model(req.model)
        key = m.check_embeddings(req)
        request.state.model, request.state.inputs = m.name, len(req.texts)
        rows, tokens = await _queued(state, m, request.receive, key, req, req.texts, key[1])
        request.state.tokens = tokens
        data = []
        for i, row in enumerate(rows):
            if m.kind == "sparse":
                emb: Any = {"indices": row[0], "values": row[1], "dimension": row[2]}
            elif req.encoding_format == "base64":
                emb = base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
            else:
                emb = row.tolist()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        return JSONResponse({"object": "list", "data": data, "model": m.name,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def rerank(request: Request) -> Response:
        await start(request)
        req = protocol.rerank_request(
            protocol.parse_json(await read_body(request.receive, request.headers, limits["max_body_bytes"])), limits)
        m = state.model(req.model)
        key = m.check_rerank(req)
        request.state.model, request.state.inputs = m.name, len(req.documents)
        hits, tokens = await _queued(state, m, request.receive, key, req, [(req.query, d) for d in req.documents],
                                     None)
        request.state.tokens = tokens
        results = []
        for h in hits:
            r: dict[str, Any] = {"index": h["corpus_id"], "relevance_score": h["score"]}
            if req.return_documents:
                r["document"] = {"text": h["text"]}
            results.append(r)
        return JSONResponse({"object": "list", "model": m.name, "results": results,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def models(request: Request) -> Response:
        await start(request)
        data = [{"id": n, "object": "model", "created": state.created, "owned_by": "stpipe",
                 "type": m.spec.model_type, "ready": n in state.batchers,
                 **({"dimension": m.dimension} if m.dimension else {})} for n, m in state.models.items()]
        return JSONResponse({"object": "list", "data": data})

    async def health(request: Request) -> Response:
        if state.failed is not None:
            return JSONResponse({"status": "failed"}, status_code=503)
        if not state.ready.is_set():
            return JSONResponse({"status": "loading", "ready": sorted(state.batchers)}, status_code=503,
                                headers={"Retry-After": "1"})
        return JSONResponse({"status": "ok", "models": list(state.models)})

    async def metrics(request: Request) -> Response:
        await start(request)
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def on_starlette_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: f"no endpoint {request.url.path}", 405: f"{request.method} is not allowed on "
                   f"{request.url.path}"}.get(exc.status_code, str(exc.detail))
        return JSONResponse(HTTPError(exc.status_code, message).body(), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def on_gone(request: Request, exc: Exception) -> Response:
        return Response(status_code=499)  # nobody reads it: the client left

    async def on_error(request: Request, exc: Exception) -> Response:
        LOG.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return JSONResponse(HTTPError(500, "internal error (see the server's log)").body(), status_code=500)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        threading.Thread(target=state.load, name="stpipe-load", daemon=True).start()
        yield
        await asyncio.get_running_loop().run_in_executor(None, state.close, settings.get("shutdown_timeout_s"))

    routes = [Route("/v1/embeddings", embeddings, methods=["POST"]), Route("/v1/rerank", rerank, methods=["POST"]),
              Route("/v1/models", models, methods=["GET"]), Route("/health", health, methods=["GET"]),
              Route("/metrics", metrics, methods=["GET"])]
    middleware = [Middleware(AccessLog, metrics=state.metrics, log=bool(settings.get("access_log", True))),
                  *cors_middleware(settings.get("cors") or {})]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={HTTPError: on_http_error, HTTPException: on_starlette_error,
                                        ClientGone: on_gone, Exception: on_error})
    app.state.serve = state
    return app


__all__ = ["ClientGone", "ServeState", "create_app"]
