"""The server's lifecycle on a real uvicorn server: a client that disconnects while its request waits has its work
dropped (the model never sees its texts; logged as 499), and a shutdown lets the request in flight finish."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx

from stpipe.serving.app import create_app
from stpipe.serving.model import ServedModel

from .conftest import Running, specs_for


def test_disconnect_drops_the_work_and_shutdown_drains(model_files, monkeypatch):
    seen: list[list[str]] = []
    first_started, release = threading.Event(), threading.Event()
    real = ServedModel.run_embeddings

    def recording(self, key, jobs):
        seen.append([t for req, _ in jobs for t in req.texts])
        if len(seen) == 1:
            first_started.set()
            release.wait(30)
        return real(self, key, jobs)

    monkeypatch.setattr(ServedModel, "run_embeddings", recording)
    specs, settings = specs_for(model_files, ["emb"])
    running = Running(create_app(specs, settings))
    state = running.app.state.serve
    answers: dict[str, int] = {}

    def call(name: str, text: str) -> None:
        answers[name] = httpx.post(running.url + "/v1/embeddings", json={"model": "emb", "input": [text]},
                                   timeout=60).status_code

    try:
        first = threading.Thread(target=call, args=("first", "first text"))
        first.start()
        assert first_started.wait(30)
        body = json.dumps({"model": "emb", "input": ["text of a client that left"]}).encode()
        with socket.create_connection(("127.0.0.1", running.port)) as s:  # sends, then hangs up without reading
            s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            deadline = time.monotonic() + 10
            while state.batchers["emb"].queued_inputs == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert state.batchers["emb"].queued_inputs == 1
        deadline = time.monotonic() + 10
        while state.metrics.value("stpipe_requests_total", {"path": "/v1/embeddings", "status": "499"}) == 0:
            assert time.monotonic() < deadline, "the disconnect was not noticed"
            time.sleep(0.01)
        release.set()
        first.join(30)
        call("after", "after text")
        assert answers == {"first": 200, "after": 200}
        assert seen == [["first text"], ["after text"]]  # the departed client's text never reached the model

        # shutdown while a request is in flight: it still gets its answer
        seen.clear()
        release.clear()
        first_started.clear()
        last = threading.Thread(target=call, args=("last", "last text"))
        last.start()
        assert first_started.wait(30)
        running.server.should_exit = True
        time.sleep(0.3)
        release.set()
        last.join(30)
        assert answers["last"] == 200
        running.thread.join(30)
        assert not running.thread.is_alive()
    finally:
        release.set()
        running.stop()
