"""The STS evaluator equals sentence-transformers' EmbeddingSimilarityEvaluator (the oracle) within 1e-4; the
evaluator registry chooses evaluators by the name a data config gives, plugins included."""

from __future__ import annotations

import csv
import json

import pytest
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

import stpipe
from stpipe.errors import ConfigError
from stpipe.experiments.data import check_data, data_config_from
from stpipe.experiments.evaluators import (
    Evaluator,
    evaluate,
    evaluator_class,
    evaluator_names,
    register_evaluator,
    render_result,
    unregister_evaluator,
)
from stpipe.resources import dataset_file

FNS = ["cosine", "dot", "euclidean", "manhattan"]


def read_stsb(f, limit=None):
    """The oracle's reading of an STS Benchmark file (as sentence-transformers' examples do: score / 5)."""
    s1, s2, scores = [], [], []
    with open(f, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            s1.append(row[5])
            s2.append(row[6])
            scores.append(float(row[4]) / 5)
    return s1[:limit], s2[:limit], scores[:limit]


def oracle_sts(model, s1, s2, scores):
    ev = EmbeddingSimilarityEvaluator(s1, s2, scores, similarity_fn_names=FNS, write_csv=False)
    return ev(model)


@pytest.fixture(scope="module")
def tiny_pair(tiny_bert_dir, tmp_path_factory):
    """A tiny dense model built by stpipe and the same model saved and loaded by sentence-transformers."""
    pipe = stpipe.build({"modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                                     {"type": "Pooling", "pooling_mode": "mean"}]}, device="cpu")
    saved = tmp_path_factory.mktemp("tiny-dense")
    pipe.save(str(saved))
    return pipe, SentenceTransformer(str(saved), device="cpu")


def assert_parity(result, ref):
    for fn in FNS:
        for m in ("pearson", "spearman"):
            assert result["metrics"][f"{m}_{fn}"] == pytest.approx(ref[f"{m}_{fn}"], abs=1e-4), f"{m}_{fn}"
    assert result["main_metric"] == "spearman_cosine"


def test_sts_matches_oracle_on_a_tiny_model(tiny_pair, tmp_path):
    pipe, st = tiny_pair
    lines = dataset_file("stsb-dev").read_text(encoding="utf-8").splitlines(keepends=True)[:300]
    f = tmp_path / "sts-300.csv"
    f.write_text("".join(lines), encoding="utf-8")
    result = evaluate(pipe, {"evaluator": "sts", "path": str(f), "format": "stsb"}, batch_size=16)
    assert result["n"] == 300 and result["evaluator"] == "sts" and result["data"] == "sts-300.csv"
    assert_parity(result, oracle_sts(st, *read_stsb(f)))
    json.dumps(result)  # JSON-serialisable


def test_sts_jsonl_with_own_columns_and_scale_gives_the_same_numbers(tiny_pair, tmp_path):
    pipe, st = tiny_pair
    s1, s2, scores = read_stsb(dataset_file("stsb-dev"), 120)
    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps({"a": a, "b": b, "label": 100 * y}) + "\n" for a, b, y in zip(s1, s2, scores)))
    cfg = {"evaluator": "sts", "path": str(f), "columns": {"sentence1": "a", "sentence2": "b", "score": "label"},
           "score_range": [0, 100], "similarity_fn_names": ["dot"], "main_similarity": "dot"}
    result = evaluate(pipe, cfg)
    ref = oracle_sts(st, s1, s2, scores)
    assert sorted(result["metrics"]) == ["pearson_dot", "spearman_dot"] and result["main_metric"] == "spearman_dot"
    assert result["metrics"]["spearman_dot"] == pytest.approx(ref["spearman_dot"], abs=1e-4)
    assert "* spearman_dot" in render_result(result)


@pytest.mark.slow
def test_minilm_on_shipped_stsb_dev_matches_oracle(minilm_dir):
    """What `stpipe evaluate model=minilm data=stsb-dev` runs, against EmbeddingSimilarityEvaluator."""
    from stpipe.resources import conf_dir

    pipe = stpipe.build(conf_dir() / "model" / "minilm.yaml", device="cpu")
    result = evaluate(pipe, "stsb-dev", batch_size=64)
    ref = oracle_sts(SentenceTransformer(str(minilm_dir), device="cpu"), *read_stsb(dataset_file("stsb-dev")))
    assert result["n"] == 1500
    assert_parity(result, ref)
    assert result["metrics"]["spearman_cosine"] > 0.8  # a trained model: the numbers mean something


class Overlap(Evaluator):
    """A plugin: the share of pairs whose sentences share a word (needs no model)."""

    name = "overlap"
    schema = {"properties": {"min_words": {"type": "integer", "minimum": 1}}}

    @classmethod
    def check_data(cls, config):
        return [] if config.path.is_file() else [config.problem("data.file", "no such file")]

    def __call__(self, pipeline, *, batch_size=32, show_progress_bar=False):
        rows = [json.loads(x) for x in self.config.path.read_text().splitlines()]
        hits = [bool(set(r["a"].split()) & set(r["b"].split())) for r in rows]
        return self.result({"overlap": sum(hits) / len(hits)}, "overlap", len(rows))


def test_plugin_evaluator_is_chosen_by_config(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"a": "a cat", "b": "the cat"}\n{"a": "x", "b": "y"}\n')
    node = {"evaluator": "overlap", "path": str(f), "min_words": 2}
    with pytest.raises(ConfigError, match="unknown evaluator 'overlap'"):
        data_config_from(node)
    register_evaluator(Overlap)
    try:
        assert "overlap" in evaluator_names() and evaluator_class("overlap") is Overlap
        assert check_data(node) == []
        assert evaluate(None, node) == {"evaluator": "overlap", "data": "p.jsonl", "main_metric": "overlap",
                                        "metrics": {"overlap": 0.5}, "n": 2}
        with pytest.raises(ConfigError) as exc:  # the plugin's schema applies to the node
            data_config_from({**node, "min_wrds": 2})
        assert exc.value.problems[0].hint == "did you mean 'min_words'?"
    finally:
        unregister_evaluator("overlap")
    with pytest.raises(ValueError, match="built-in"):
        register_evaluator(Overlap, name="sts")


class ConstantModel:
    """Every input embeds to the same vector: every pair gets the same similarity."""

    def encode(self, sentences, **kw):
        import numpy as np

        return np.ones((len(sentences), 4), dtype=np.float32)


def test_constant_scores_give_an_undefined_correlation_with_its_reason_not_a_number(tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps({"sentence1": f"a{i}", "sentence2": f"b{i}", "score": i / 4}) + "\n"
                         for i in range(5)))
    result = evaluate(ConstantModel(), {"evaluator": "sts", "path": str(f), "format": "jsonl"})
    assert result["metrics"]["spearman_cosine"] is None and result["metrics"]["pearson_dot"] is None
    assert "same cosine score" in result["undefined"]["spearman_cosine"]
    json.dumps(result, allow_nan=False)  # metrics.json stays valid JSON: no NaN token
    text = render_result(result)
    assert "nan" not in text.lower() and "spearman_cosine" in text and "undefined: the model gave every pair" in text
