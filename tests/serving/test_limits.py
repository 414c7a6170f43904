"""API keys (from a named variable or a file, never from a model's folder; never logged), 503 while the models
load, and the settings' checks — on a real server where the behaviour is the server's."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest

from stpipe.errors import CommandError
from stpipe.serving.app import create_app
from stpipe.serving.limits import check_key, load_api_keys
from stpipe.serving.model import ServedModel
from stpipe.serving.protocol import HTTPError

from .conftest import Running, specs_for


def test_keys_come_from_the_named_variable_and_the_file(tmp_path):
    f = tmp_path / "keys.txt"
    f.write_text("# ops\nk2\n\nk3\n")
    assert load_api_keys({"api_key_env": "K", "api_key_file": str(f)}, environ={"K": "k1, k1b"}) == \
        ("k1", "k1b", "k2", "k3")
    with pytest.raises(CommandError, match="names the environment variable K, which is not set"):
        load_api_keys({"api_key_env": "K"}, environ={})
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "keys.txt").write_text("k\n")
    with pytest.raises(CommandError, match="inside the served model's folder"):
        load_api_keys({"api_key_file": str(model_dir / "keys.txt")}, [model_dir])
    assert load_api_keys({}) == ()


def test_check_key():
    check_key({}, ())
    check_key({"authorization": "Bearer k2"}, ("k1", "k2"))
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "Basic k1"}):
        with pytest.raises(HTTPError) as e:
            check_key(headers, ("k1",))
        assert e.value.status == 401


def test_a_server_with_keys_refuses_without_one_and_never_logs_it(model_files, caplog):
    import openai

    specs, settings = specs_for(model_files, ["emb"])
    running = Running(create_app(specs, settings, ("s3cret-key",)))
    try:
        with caplog.at_level(logging.INFO, logger="stpipe.serve.access"):
            logging.getLogger("stpipe.serve.access").propagate = True
            body = {"model": "emb", "input": "x"}
            assert httpx.post(running.url + "/v1/embeddings", json=body).status_code == 401
            r = httpx.post(running.url + "/v1/embeddings", json=body, headers={"Authorization": "Bearer wrong"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
            assert httpx.get(running.url + "/metrics").status_code == 401
            assert httpx.get(running.url + "/health").status_code == 200  # probes need no key
            client = openai.OpenAI(base_url=running.url + "/v1", api_key="s3cret-key", max_retries=0)
            assert len(client.embeddings.create(model="emb", input=["a secret text"]).data[0].embedding) == 32
        records = [r.getMessage() for r in caplog.records if r.name == "stpipe.serve.access"]
        assert len(records) == 5 and '"status": 401' in records[0] and '"inputs": 1' in records[-1]
        assert not any("s3cret" in r or "secret text" in r for r in records)
    finally:
        logging.getLogger("stpipe.serve.access").propagate = False
        running.stop()


def test_503_while_loading_then_ready(model_files, monkeypatch):
    gate = threading.Event()
    real = ServedModel.load

    def slow_load(self):
        gate.wait(30)
        real(self)

    monkeypatch.setattr(ServedModel, "load", slow_load)
    specs, settings = specs_for(model_files, ["emb"])
    running = Running(create_app(specs, settings), wait_ready=False)
    try:
        health = httpx.get(running.url + "/health")
        assert health.status_code == 503 and health.json()["status"] == "loading"
        r = httpx.post(running.url + "/v1/embeddings", json={"model": "emb", "input": "x"})
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "still loading" in r.text
        assert httpx.get(running.url + "/v1/models").json()["data"][0]["ready"] is False
        gate.set()
        for _ in range(200):
            if httpx.get(running.url + "/health").status_code == 200:
                break
            threading.Event().wait(0.05)
        assert httpx.post(running.url + "/v1/embeddings", json={"model": "emb", "input": "x"}).status_code == 200
    finally:
        gate.set()
        running.stop()
