"""``stpipe serve`` from the command line: nothing starts on a bad model, bad settings, a missing key variable or a
missing extra (exit 2, the reason); a real ``python -m stpipe serve serve=examples`` subprocess serves the
conf/model examples — the asymmetric Router (task=query | document) and the reranker — as the official
client and plain HTTP see them, and stops cleanly on SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from stpipe.cli import main

from .conftest import free_port

REPO = Path(__file__).resolve().parents[2]


def cli(capsys, *args: str) -> tuple[int, str]:
    rc = main(["serve", *args])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_a_bad_model_does_not_start(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("modules:\n  - {type: Transformer, model_name_or_path: all-MiniLM-L6-v2}\n"
                   "  - {type: Pooling, pooling_mode: meen}\n")
    rc, text = cli(capsys, str(bad), "port=1")
    assert rc == 2 and "error [schema.enum] modules[1].pooling_mode" in text and "listening" not in text


@pytest.mark.parametrize("args, message", [
    (("port=http",), "error [schema.type] serve.port"),
    (("serve.limits.max_inputs=0",), "serve.limits.max_inputs"),
    (("serve.auth.api_key_env=STPIPE_TEST_UNSET_KEY",), "STPIPE_TEST_UNSET_KEY, which is not set"),
    (("serve=nope",), "nope"),
    (("workers=2",), "stpipe serve runs one model instance per process"),
    (("+serve.models.a.model=minilm", "model=reranker"), "serve.models names the models to serve"),
])
def test_bad_settings_do_not_start(capsys, args, message):
    os.environ.pop("STPIPE_TEST_UNSET_KEY", None)
    rc, text = cli(capsys, *args)
    assert rc == 2 and message in text and "listening" not in text and "Traceback" not in text


def test_the_missing_extra_is_named(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises ImportError
    rc, text = cli(capsys)
    assert rc == 2 and "pip install 'stpipe[serve]'" in text


@pytest.mark.slow  # a subprocess building three MiniLM-sized models
def test_serve_examples_in_a_subprocess(standins, tmp_path):
    import openai

    import stpipe

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "stpipe", "serve", "serve=examples", "~serve.models.minilm",
                             f"port={port}", "device=cpu"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        texts = ["How many people live in Berlin?", "Berlin has 3.5 million inhabitants.", "a photo of a cat"]
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        asym = stpipe.build(REPO / "conf/model/asymmetric.yaml", device="cpu")
        for task in ("query", "document"):
            r = client.embeddings.create(model="asymmetric", input=texts, extra_body={"task": task})
            assert np.abs(np.array([d.embedding for d in r.data]) - asym.encode(texts, task=task)).max() <= 1e-6
        small = client.embeddings.create(model="asymmetric", input=texts, dimensions=64, encoding_format="float")
        assert np.abs(np.array([d.embedding for d in small.data]) - asym.encode(texts, truncate_dim=64)).max() <= 1e-6
        rr = stpipe.build(REPO / "conf/model/reranker.yaml", device="cpu")
        hits = httpx.post(url + "/v1/rerank", json={"model": "reranker", "query": texts[0], "documents": texts[1:],
                                                    "return_documents": True}, timeout=30).json()["results"]
        want = rr.rank(texts[0], texts[1:], return_documents=True)
        assert [h["index"] for h in hits] == [w["corpus_id"] for w in want]
        assert np.abs(np.array([h["relevance_score"] for h in hits]) - [w["score"] for w in want]).max() <= 1e-6
        bad = httpx.post(url + "/v1/embeddings", json={"model": "reranker", "input": "x"})
        assert bad.status_code == 422 and httpx.get(url + "/health").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "listening on http://127.0.0.1:" in out and "ready: asymmetric (embeddings, 384-d), reranker (rerank)" in out
    assert "stpipe serve: stopped" in out
    assert '"path": "/v1/rerank", "status": 200' in err and "Berlin" not in err  # the access log: no texts
