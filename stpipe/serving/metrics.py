"""Prometheus metrics (the text exposition format, written here: no client library) and the access log.

:class:`Metrics` holds counters and histograms by label set, thread-safe (the batcher's worker thread observes
batch sizes, queue waits and inference times). ``GET /metrics`` serves :meth:`Metrics.render`:

- ``stpipe_requests_total{path,status}`` and ``stpipe_request_seconds{path}`` (histogram) — every request;
- ``stpipe_inputs_total{model}``, ``stpipe_tokens_total{model}`` — what the models were asked to do;
- ``stpipe_batch_inputs{model}``, ``stpipe_batch_tokens{model}``, ``stpipe_queue_wait_seconds{model}``,
  ``stpipe_inference_seconds{model}`` (histograms) — the dynamic batcher;
- ``stpipe_queued_inputs{model}`` and ``stpipe_model_ready{model}`` (gauges).

:class:`AccessLog` is an ASGI middleware writing one JSON line per request to the ``stpipe.serve.access`` logger:
method, path, status, latency_ms, and — set by the handler — model and inputs; never the texts, query strings,
headers or keys.

>>> m = Metrics()
>>> m.inc("stpipe_requests_total", {"path": "/health", "status": "200"})
>>> "stpipe_requests_total{path=\\"/health\\",status=\\"200\\"} 1" in m.render()
True
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
HELP = {
    "stpipe_requests_total": ("counter", "HTTP requests answered, by path and status."),
    "stpipe_request_seconds": ("histogram", "Time from the request's arrival to its answer, by path."),
    "stpipe_inputs_total": ("counter", "Texts (embeddings) or documents (rerank) received, by model."),
    "stpipe_tokens_total": ("counter", "Tokens of the inputs received, by model."),
    "stpipe_batch_inputs": ("histogram", "Inputs per merged model call, by model."),
    "stpipe_batch_tokens": ("histogram", "Tokens per merged model call, by model."),
    "stpipe_queue_wait_seconds": ("histogram", "Time a request waited for its model call, by model."),
    "stpipe_inference_seconds": ("histogram", "Duration of a merged model call, by model."),
    "stpipe_queued_inputs": ("gauge", "Inputs waiting for their model call, by model."),
    "stpipe_model_ready": ("gauge", "1 once the model is built and serving, else 0."),
}
_SIZE_METRICS = ("stpipe_batch_inputs", "stpipe_batch_tokens")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    esc = {k: str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') for k, v in labels.items()}
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(esc.items())) + "}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


class Metrics:
    """Counters, gauges and histograms by (name, labels); :meth:`render` gives the Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple], float] = {}
        self._hist: dict[tuple[str, tuple], list[float]] = {}  # bucket counts…, sum, count
        self._gauges: dict[str, Callable[[], Mapping[tuple, float]]] = {}

    def inc(self, name: str, labels: Mapping[str, str] | None = None, value: float = 1.0) -> None:
        key = (name, tuple(sorted((labels or {}).items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + value

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        buckets = SIZE_BUCKETS if name in _SIZE_METRICS else LATENCY_BUCKETS
        key = (name, tuple(sorted((labels or {}).items())))
        with self._lock:
            h = self._hist.setdefault(key, [0.0] * (len(buckets) + 2))
            for i, b in enumerate(buckets):
                if value <= b:
                    h[i] += 1
            h[-2] += value
            h[-1] += 1

    def gauge(self, name: str, read: Callable[[], Mapping[tuple, float]]) -> None:
        """A gauge read at render time: ``read()`` → {label items: value}."""
        self._gauges[name] = read

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """A counter's value (0 when never incremented); a histogram's count."""
        key = (name, tuple(sorted((labels or {}).items())))
        with self._lock:
            if key in self._hist:
                return self._hist[key][-1]
            return self._values.get(key, 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            values, hist = dict(self._values), {k: list(v) for k, v in self._hist.items()}
        gauges = {name: read() for name, read in self._gauges.items()}
        for name, (kind, text) in HELP.items():
            rows = [(k[1], v) for k, v in values.items() if k[0] == name]
            hrows = [(k[1], v) for k, v in hist.items() if k[0] == name]
            grows = list(gauges.get(name, {}).items())
            if not (rows or hrows or grows):
                continue
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            for labels, v in sorted(rows) + sorted(grows):
                lines.append(f"{name}{_labels(dict(labels))} {_num(v)}")
            buckets = SIZE_BUCKETS if name in _SIZE_METRICS else LATENCY_BUCKETS
            for labels, h in sorted(hrows):
                for b, count in zip(buckets, h, strict=False):
                    lines.append(f"{name}_bucket{_labels({**dict(labels), 'le': _num(b)})} {_num(count)}")
                lines.append(f"{name}_bucket{_labels({**dict(labels), 'le': '+Inf'})} {_num(h[-1])}")
                lines.append(f"{name}_sum{_labels(dict(labels))} {_num(h[-2])}")
                lines.append(f"{name}_count{_labels(dict(labels))} {_num(h[-1])}")
        return "\n".join(lines) + "\n"


ACCESS = logging.getLogger("stpipe.serve.access")


class AccessLog:
    """ASGI middleware: request metrics and (when ``log``) one JSON line per HTTP request. A handler adds
    ``model`` and ``inputs`` through ``scope["state"]`` (Starlette's ``request.state``)."""

    def __init__(self, app: Any, metrics: Metrics, log: bool = True) -> None:
        self.app, self.metrics, self.log = app, metrics, log

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}
        scope.setdefault("state", {})

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            path = scope.get("path", "")
            known = path if path in ("/v1/embeddings", "/v1/rerank", "/v1/models", "/health", "/metrics") else "other"
            self.metrics.inc("stpipe_requests_total", {"path": known, "status": str(status["code"])})
            self.metrics.observe("stpipe_request_seconds", seconds, {"path": known})
            if self.log:
                state = scope.get("state") or {}
                record = {"method": scope.get("method"), "path": path[:200], "status": status["code"],
                          "latency_ms": round(seconds * 1000, 3)}
                for key in ("model", "inputs", "tokens"):
                    if key in state:
                        record[key] = state[key]
                ACCESS.info(json.dumps(record))


__all__ = ["ACCESS", "AccessLog", "Metrics"]
