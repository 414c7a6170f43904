"""The app on a real uvicorn server (127.0.0.1, a free port): the official ``openai`` client and plain HTTP get the
embeddings ``Pipeline.encode`` / ``stpipe encode`` give, ``dimensions``/``normalize``/``task`` honoured, sparse
outputs, rerank equal to ``CrossEncoder.rank`` / ``stpipe rank``, and every bad input answered with its status —
the server still serving afterwards."""

from __future__ import annotations

import base64
import json
import threading

import httpx
import numpy as np
import pytest

from stpipe.cli import main

TEXTS = ["A man is playing a guitar.", "the cat sat on the mat", "paris", "what is the weather like in the city today"]
DOCS = ["the cat sat on the mat", "a dog in the house", "music and a good book", "the cat"]


def post(served, path: str, body) -> httpx.Response:
    return httpx.post(served.url + path, json=body, timeout=30)


def test_openai_client_gets_what_encode_and_stpipe_encode_give(served, built, model_files, tmp_path, capsys):
    import openai

    client = openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    got = client.embeddings.create(model="emb", input=TEXTS)  # the client asks for base64 and decodes it
    plain = client.embeddings.create(model="emb", input=TEXTS, encoding_format="float")
    want = built["emb"].encode(TEXTS)
    assert [d.index for d in got.data] == list(range(len(TEXTS)))
    assert np.abs(np.array([d.embedding for d in got.data]) - want).max() <= 1e-6
    assert np.abs(np.array([d.embedding for d in plain.data]) - want).max() <= 1e-6
    assert got.usage.prompt_tokens == got.usage.total_tokens == sum(
        len(x) for x in built["emb"].tokenizer(TEXTS)["input_ids"])
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(TEXTS) + "\n")
    assert main(["encode", str(model_files["emb"]), f"inputs={inputs}", f"output={tmp_path / 'e.npy'}",
                 "device=cpu"]) == 0, capsys.readouterr().err
    assert np.abs(np.array([d.embedding for d in got.data]) - np.load(tmp_path / "e.npy")).max() <= 1e-6
    one = client.embeddings.create(model="emb", input="paris", encoding_format="float")
    assert len(one.data) == 1 and np.abs(np.array(one.data[0].embedding) - want[2]).max() <= 1e-6


def test_dimensions_normalize_and_base64(served, built):
    r = post(served, "/v1/embeddings", {"model": "emb", "input": TEXTS, "dimensions": 8, "normalize": True,
                                        "encoding_format": "base64"})
    assert r.status_code == 200, r.text
    rows = np.array([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in r.json()["data"]])
    want = built["emb"].encode(TEXTS, truncate_dim=8, normalize_embeddings=True)
    assert rows.shape == (4, 8) and np.abs(rows - want).max() <= 1e-6


def test_task_picks_the_router_route(served, built):
    got = {}
    for task in ("query", "document"):
        r = post(served, "/v1/embeddings", {"model": "router", "input": TEXTS, "task": task})
        assert r.status_code == 200, r.text
        got[task] = np.array([d["embedding"] for d in r.json()["data"]])
        assert np.abs(got[task] - built["router"].encode(TEXTS, task=task)).max() <= 1e-6
    assert np.abs(got["query"] - got["document"]).max() > 1e-2  # two routes, two different results


def test_sparse_model_gives_indices_and_values(served, built):
    r = post(served, "/v1/embeddings", {"model": "sparse", "input": TEXTS[:2]})
    assert r.status_code == 200, r.text
    want = built["sparse"].encode(TEXTS[:2], convert_to_sparse_tensor=False).numpy()
    for row, d in zip(want, r.json()["data"], strict=True):
        emb = d["embedding"]
        assert emb["indices"] == np.nonzero(row)[0].tolist() and emb["dimension"] == row.shape[0]
        assert np.abs(np.array(emb["values"]) - row[row != 0]).max() <= 1e-6


def test_rerank_equals_rank_and_stpipe_rank(served, built, model_files, tmp_path, capsys):
    r = post(served, "/v1/rerank", {"model": "rr", "query": "the cat", "documents": DOCS, "top_n": 3,
                                    "return_documents": True})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    want = built["rr"].rank("the cat", DOCS, top_k=3, return_documents=True)
    assert [x["index"] for x in results] == [h["corpus_id"] for h in want]
    assert [x["document"]["text"] for x in results] == [h["text"] for h in want]
    assert np.abs(np.array([x["relevance_score"] for x in results]) - [h["score"] for h in want]).max() <= 1e-6
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n")
    assert main(["rank", str(model_files["rr"]), "query=the cat", f"inputs={docs}", "top_k=3", "device=cpu",
                 f"output={tmp_path / 'hits.jsonl'}"]) == 0, capsys.readouterr().err
    hits = [json.loads(x) for x in (tmp_path / "hits.jsonl").read_text().splitlines()]
    assert [x["index"] for x in results] == [h["corpus_id"] for h in hits]
    assert np.abs(np.array([x["relevance_score"] for x in results]) - [h["score"] for h in hits]).max() <= 1e-6
    assert "document" not in post(served, "/v1/rerank", {"model": "rr", "query": "x", "documents": DOCS}
                                  ).json()["results"][0]


def test_concurrent_requests_each_get_their_own_rows(served, built):
    want = built["emb"].encode(TEXTS, normalize_embeddings=True)
    out: dict[int, np.ndarray] = {}

    def one(i: int) -> None:
        texts = [TEXTS[(i + j) % 4] for j in range(1 + i % 3)]
        r = post(served, "/v1/embeddings", {"model": "emb", "input": texts, "normalize": i % 2 == 0})
        rows = np.array([d["embedding"] for d in r.json()["data"]])
        ref = want[[(i + j) % 4 for j in range(1 + i % 3)]]
        out[i] = np.abs(rows - (ref if i % 2 == 0 else built["emb"].encode(texts))).max()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 16 and max(out.values()) <= 1e-5


BAD = [
    ("/v1/embeddings", b'{"model": "emb", "input": [', 400, None),
    ("/v1/embeddings", b'["emb"]', 400, None),
    ("/v1/embeddings", {"model": "emb"}, 422, "input"),
    ("/v1/embeddings", {"input": "x"}, 422, "model"),
    ("/v1/embeddings", {"model": "emb", "input": [[101, 102]]}, 422, "input[0]"),
    ("/v1/embeddings", {"model": "emb", "input": ["a", None]}, 422, "input[1]"),
    ("/v1/embeddings", {"model": "emb", "input": []}, 422, "input"),
    ("/v1/embeddings", {"model": "emb", "inputs": ["a"]}, 422, "inputs"),
    ("/v1/embeddings", {"model": "emb", "input": "a", "dimensions": 0}, 422, "dimensions"),
    ("/v1/embeddings", {"model": "emb", "input": "a", "dimensions": 4096}, 422, "dimensions"),
    ("/v1/embeddings", {"model": "emb", "input": "a", "encoding_format": "int8"}, 422, "encoding_format"),
    ("/v1/embeddings", {"model": "emb", "input": "a", "normalize": "yes"}, 422, "normalize"),
    ("/v1/embeddings", {"model": "emb", "input": "a", "prompt_name": "nope"}, 422, "prompt_name"),
    ("/v1/embeddings", {"model": "router", "input": "a", "task": "nope"}, 422, "task"),
    ("/v1/embeddings", {"model": "sparse", "input": "a", "encoding_format": "base64"}, 422, "encoding_format"),
    ("/v1/embeddings", {"model": "rr", "input": "a"}, 422, "model"),
    ("/v1/embeddings", {"model": "nope", "input": "a"}, 404, "model"),
    ("/v1/embeddings", {"model": "emb", "input": ["a"] * 9}, 413, "input"),
    ("/v1/embeddings", {"model": "emb", "input": ["a" * 301]}, 413, "input[0]"),
    ("/v1/embeddings", {"model": "emb", "input": ["ab " * 200] * 4}, 413, None),
    ("/v1/rerank", {"model": "emb", "query": "q", "documents": ["d"]}, 422, "model"),
    ("/v1/rerank", {"model": "rr", "query": "q"}, 422, "documents"),
    ("/v1/rerank", {"model": "rr", "query": 3, "documents": ["d"]}, 422, "query"),
    ("/v1/rerank", {"model": "rr", "query": "q", "documents": ["d"], "top_n": 0}, 422, "top_n"),
]


@pytest.mark.parametrize("path, body, status, param", BAD)
def test_bad_input_gets_its_status_and_the_server_keeps_serving(served, built, path, body, status, param):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(served.url + path, content=content, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["param"] == param
    ok = post(served, "/v1/embeddings", {"model": "emb", "input": "still here"})
    assert ok.status_code == 200 and httpx.get(served.url + "/health").status_code == 200


def test_unknown_paths_and_methods_get_json_errors(served):
    assert httpx.get(served.url + "/v1/embeddings").status_code == 405
    r = httpx.get(served.url + "/nope")
    assert r.status_code == 404 and r.json()["error"]["message"] == "no endpoint /nope"


def test_openai_client_raises_the_servers_message(served):
    import openai

    client = openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="model 'nope' is not served here"):
        client.embeddings.create(model="nope", input="x")


def test_models_and_metrics(served):
    models = httpx.get(served.url + "/v1/models").json()["data"]
    assert {m["id"]: m["type"] for m in models} == {"emb": "SentenceTransformer", "router": "SentenceTransformer",
                                                    "sparse": "SparseEncoder", "rr": "CrossEncoder"}
    post(served, "/v1/embeddings", {"model": "emb", "input": TEXTS})
    text = httpx.get(served.url + "/metrics").text
    for line in ('stpipe_requests_total{path="/v1/embeddings",status="200"}', 'stpipe_batch_inputs_count{model="emb"}',
                 'stpipe_queue_wait_seconds_bucket{le="+Inf",model="emb"}', 'stpipe_model_ready{model="rr"} 1',
                 "# TYPE stpipe_inference_seconds histogram"):
        assert line in text
