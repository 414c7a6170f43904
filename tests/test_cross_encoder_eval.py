"""The ``reranking`` evaluator against sentence-transformers 6.2's ``CrossEncoderRerankingEvaluator`` (same
MAP / MRR@k / nDCG@k on the same model and data), its metrics against scikit-learn (ties included), its data checks,
and ``stpipe evaluate`` on a CrossEncoder."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import WORDS
from test_cross_encoder import definition, write_classifier

import stpipe
from stpipe.errors import ConfigError, ModelTypeError
from stpipe.experiments.data import check_data, data_config_from
from stpipe.experiments.evaluators import evaluate
from stpipe.experiments.reranking import average_precision, mrr_at_k, ndcg_at_k


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def samples(n: int = 12, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = [{"query": text(rng, 4), "positive": [text(rng, rng.randint(3, 12)) for _ in range(rng.randint(1, 2))],
            "negative": [text(rng, rng.randint(3, 12)) for _ in range(rng.randint(3, 14))]} for _ in range(n)]
    out.append({"query": "no positive", "positive": [], "negative": ["a dog"]})  # scores 0, still counted
    return out


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def cls_dir(tmp_path_factory) -> Path:
    return write_classifier(tmp_path_factory.mktemp("tiny-cls-eval"), seed=5)


@pytest.mark.slow  # imports scikit-learn
def test_metrics_match_scikit_learn_with_ties():
    from sklearn.metrics import average_precision_score, ndcg_score

    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(2, 30))
        y = rng.integers(0, 2, n)
        y[rng.integers(0, n)] = 1
        s = rng.integers(0, 5, n).astype(float)  # many ties
        for k in (1, 3, 10):
            assert abs(ndcg_at_k(y, s, k) - ndcg_score([y], [s], k=k)) < 1e-12
        assert abs(average_precision(y, s) - average_precision_score(y, s)) < 1e-12
    assert mrr_at_k([0, 0, 1], [0.9, 0.8, 0.1], 2) == 0.0 and mrr_at_k([0, 0, 1], [0.9, 0.8, 0.1], 3) == 1 / 3


@pytest.mark.slow  # two evaluations, each model loaded
def test_reranking_matches_sentence_transformers(cls_dir, tmp_path):
    from sentence_transformers import CrossEncoder as STCrossEncoder
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    data = samples()
    f = write_jsonl(tmp_path / "rerank.jsonl", data)
    ours = stpipe.build(definition(cls_dir), device="cpu")
    for at_k in (10, 3):
        got = evaluate(ours, {"evaluator": "reranking", "path": str(f), "at_k": at_k}, batch_size=8)
        ref = CrossEncoderRerankingEvaluator(data, at_k=at_k, batch_size=8)(STCrossEncoder(str(cls_dir),
                                                                                           device="cpu"))
        assert got["main_metric"] == f"ndcg@{at_k}" and got["n"] == len(data)
        assert set(got["metrics"]) == {"map", f"mrr@{at_k}", f"ndcg@{at_k}"}
        for key, value in got["metrics"].items():
            assert abs(value - ref[key]) <= 1e-6, key
    assert 0 < got["metrics"]["ndcg@3"] < 1


def test_reranking_data_problems_name_the_line(tmp_path):
    f = write_jsonl(tmp_path / "bad.jsonl", [
        {"query": "q", "positive": ["p"], "negative": ["n"]},
        {"query": "q", "positive": ["p"]},
        "not json",
        {"query": "q", "positive": ["p"], "negative": "n"},
        {"query": "q", "positive": ["p"], "negative": [], "extra": 1},
    ])
    problems = check_data(data_config_from({"evaluator": "reranking", "path": str(f)}))
    assert [(p.code, p.source) for p in problems] == [("data.columns", f"{f}:2"), ("data.line", f"{f}:3"),
                                                      ("data.line", f"{f}:4"), ("data.columns", f"{f}:5")]
    assert "no key 'negative'" in problems[0].message and "'negative' must be a list of strings" in problems[2].message
    assert check_data({"evaluator": "reranking", "path": str(write_jsonl(tmp_path / "e.jsonl", []))})[0].code == \
        "data.empty"
    assert check_data({"evaluator": "reranking", "path": str(tmp_path / "missing.jsonl")})[0].code == "data.file"
    with pytest.raises(ConfigError) as err:
        data_config_from({"evaluator": "reranking", "path": str(f), "at_k": 0})
    assert err.value.problems[0].path_str == "data.at_k"


def test_reranking_needs_a_cross_encoder(tiny_bert_dir, tmp_path):
    f = write_jsonl(tmp_path / "r.jsonl", samples(2))
    embedder = stpipe.build({"modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                                         {"type": "Pooling"}]}, device="cpu")
    with pytest.raises(ModelTypeError, match="needs a CrossEncoder, but this is a SentenceTransformer"):
        evaluate(embedder, {"evaluator": "reranking", "path": str(f)})


@pytest.mark.slow  # the model is built twice
def test_stpipe_evaluate_runs_the_reranking_evaluator(capsys, cls_dir, tmp_path):
    """`stpipe evaluate MODEL data=rerank-example data.path=FILE` on a CrossEncoder: metrics.json holds what
    evaluate() returns; the shipped data set checks clean."""
    from stpipe.cli import main

    assert check_data({"evaluator": "reranking", "path": "rerank-example"}) == []
    f = write_jsonl(tmp_path / "mine.jsonl", samples(4))
    yaml = tmp_path / "rr.yaml"
    yaml.write_text(f"model_type: CrossEncoder\nmodules:\n  - type: Transformer\n    model_name_or_path: {cls_dir}\n"
                    "    transformer_task: sequence-classification\n")
    rc = main(["evaluate", str(yaml), "data=rerank-example", f"data.path={f}", f"out={tmp_path / 'out'}"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    want = evaluate(stpipe.build(yaml, device="cpu"), {"evaluator": "reranking", "path": str(f)})
    speed = {k: written["metrics"].pop(k) for k in ("throughput", "model_size_mb") if k in written["metrics"]}
    assert written["main_metric"] == "ndcg@10" and written["metrics"] == pytest.approx(want["metrics"], abs=1e-6)
    assert speed["model_size_mb"] > 0  # evaluate reports the model's size beside its quality
    assert "* ndcg@10" in out
