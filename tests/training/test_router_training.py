"""An asymmetric Router model (static query route, tiny-BERT document route) trained with router_mapping on
(question, positive) pairs with MultipleNegativesRankingLoss: learning-rate groups, frozen parameters, and the
saved model routes the same in sentence-transformers and stpipe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import stpipe

QUESTIONS = ["what is the weather in paris", "where is the capital of france", "find images of cats",
             "who reads a book at night", "how fast runs the dog", "what do people eat", "where is the sea",
             "when is the sun red"]
DOCS = ["paris weather is rainy now", "paris is the capital of france", "a photo of a cat", "a man reads a book",
        "the dog runs fast", "people eat food", "the blue sea and the sky", "the sun is red at night"]


@pytest.fixture()
def pairs_file(tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps({"q": q, "pos": d, "id": i}) + "\n"
                         for i, (q, d) in enumerate(zip(QUESTIONS, DOCS))))
    return f


def router_definition(tiny_bert_dir) -> dict:
    return {"modules": [{"type": "Router", "default_route": "document", "sub_modules": {
        "query": [{"type": "StaticEmbedding", "tokenizer": str(tiny_bert_dir), "embedding_dim": 32}],
        "document": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                     {"type": "Pooling", "pooling_mode": "mean"}]}}]}


@pytest.mark.slow
def test_router_trains_with_router_mapping_and_lr_groups(tiny_bert_dir, pairs_file, tmp_path):
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    pipe = stpipe.build(router_definition(tiny_bert_dir))
    before = {n: p.detach().clone() for n, p in pipe.named_parameters()}
    result = stpipe.train(
        pipe, data={"path": str(pairs_file), "columns": {"question": "q", "positive": "pos"}}, loss="mnrl",
        output_dir=tmp_path / "out", max_steps=3, batch_size=4, learning_rate=1e-4, warmup_ratio=0.0,
        learning_rate_mapping={r"StaticEmbedding\..*": 1e-2},
        router_mapping={"question": "query", "positive": "document"},
        freeze=[r"Transformer\.model\.embeddings\."], save_steps=None)
    assert result["global_step"] == 3
    lr_of = {n: g["lr"] for g in result["param_groups"] for n in g["names"]}
    static = [n for n in before if "sub_modules.query" in n]
    frozen = [n for n in before if ".model.embeddings." in n]
    rest = [n for n in before if n not in static and n not in frozen]
    assert static and frozen and rest
    assert all(lr_of[n] == 1e-2 for n in static)
    assert all(lr_of[n] == 1e-4 for n in rest)
    assert not any(n in lr_of for n in frozen)  # frozen: in no optimiser group
    after = dict(pipe.named_parameters())
    assert all(not torch.equal(before[n], after[n]) for n in static)  # the query route trained
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    assert any(not torch.equal(before[n], after[n]) for n in rest)

    saved = result["model"]
    st = SentenceTransformer(saved, device="cpu")
    ours = stpipe.load(saved, device="cpu")
    for fn in ("encode_query", "encode_document"):
        trained = getattr(pipe, fn)(QUESTIONS[:3], convert_to_numpy=True)
        np.testing.assert_allclose(getattr(st, fn)(QUESTIONS[:3], convert_to_numpy=True), trained, atol=1e-5)
        np.testing.assert_allclose(getattr(ours, fn)(QUESTIONS[:3], convert_to_numpy=True), trained, atol=1e-5)
    # the two routes differ (queries go through the static table, documents through BERT)
    assert not np.allclose(pipe.encode_query(QUESTIONS[:1]), pipe.encode_document(QUESTIONS[:1]), atol=1e-3)


def test_router_mapping_names_a_missing_column(pairs_file, tmp_path):
    pipe = torch.nn.Identity()  # never reached: the plan is checked before training
    with pytest.raises(stpipe.ConfigError) as e:
        stpipe.train(pipe, data={"path": str(pairs_file), "columns": {"question": "q", "positive": "pos"}},
                     loss="mnrl", output_dir=tmp_path / "out", router_mapping={"query": "query"})
    assert e.value.problems[0].code == "training.router_mapping"
    assert "'query'" in e.value.problems[0].message and not (tmp_path / "out").exists()
