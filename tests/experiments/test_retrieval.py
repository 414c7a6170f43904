"""The retrieval evaluator equals sentence-transformers' InformationRetrievalEvaluator (dense) and
SparseInformationRetrievalEvaluator (sparse) within 1e-4 on a small BEIR set the test writes; chunking the corpus
changes nothing; ties are broken by corpus id, as the oracle does."""

from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers import SentenceTransformer, SparseEncoder
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
from sentence_transformers.sparse_encoder.evaluation import SparseInformationRetrievalEvaluator

import stpipe
from stpipe.experiments.evaluators import evaluate
from stpipe.experiments.retrieval import chunk_candidates, merge_top_k

DOCS = ["the cat runs in the house", "a dog plays with the child", "paris is the capital of france",
        "rain and weather in new york", "the sun and the moon at night", "a red car is fast",
        "music and a movie about people", "the man eats food", "the woman reads a book",
        "the cat runs in the house",  # d09, a duplicate of d00 (both titled): an exact tie, broken by corpus id
        "fish in the sea",
        "big green tree in the city", "what is the weather now", "small blue bird", ""]
QUERIES = {"q1": "where is the cat", "q2": "capital of france", "q3": "weather in new york", "q4": "a fast car",
           "q5": "reading a book", "q6": "no relevant documents here", "q7": "the cat in the house"}
QRELS = [("q1", "d00", 1), ("q1", "d09", 1), ("q2", "d02", 2), ("q3", "d03", 1), ("q3", "d12", 1),
         ("q4", "d05", 1), ("q4", "d99", 1),  # d99 is not in the corpus: it still counts for recall
         ("q5", "d08", 1), ("q5", "d07", 0),  # score 0: judged not relevant
         ("q6", "d01", 0), ("q7", "d09", 1)]
KS = {"accuracy_at_k": [1, 3, 5, 10], "precision_recall_at_k": [1, 3, 5, 10], "mrr_at_k": [10],
      "ndcg_at_k": [5, 10], "map_at_k": [100]}


@pytest.fixture(scope="module")
def beir_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("beir")
    (d / "qrels").mkdir()
    with open(d / "corpus.jsonl", "w") as fh:
        for i, text in reversed(list(enumerate(DOCS))):  # file order is not id order: ties go by id
            fh.write(json.dumps({"_id": f"d{i:02d}", "title": "Doc" if i % 3 == 0 else "", "text": text}) + "\n")
    (d / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{c}\t{s}\n"
                                                                                  for q, c, s in QRELS))
    return d


def oracle_inputs():
    corpus = {f"d{i:02d}": (f"Doc {t}".strip() if i % 3 == 0 else t) for i, t in enumerate(DOCS)}
    relevant: dict[str, set[str]] = {}
    for q, c, s in QRELS:
        if s > 0:
            relevant.setdefault(q, set()).add(c)
    return dict(queries=QUERIES, corpus=corpus, relevant_docs=relevant, write_csv=False,
                accuracy_at_k=KS["accuracy_at_k"], precision_recall_at_k=KS["precision_recall_at_k"],
                mrr_at_k=KS["mrr_at_k"], ndcg_at_k=KS["ndcg_at_k"], map_at_k=KS["map_at_k"])


def assert_parity(result, ref, fn):
    names = {k.removeprefix(f"{fn}_") for k in ref if k.startswith(f"{fn}_") and "@" in k}
    assert names == set(result["metrics"])
    for name in names:
        assert result["metrics"][name] == pytest.approx(ref[f"{fn}_{name}"], abs=1e-4), name
    assert result["main_metric"] == "ndcg@10" and result["n"] == 6 and result["n_corpus"] == len(DOCS)


def data(beir_dir, **kw):
    return {"evaluator": "retrieval", "path": str(beir_dir), **KS, **kw}


@pytest.fixture(scope="module")
def dense(tiny_bert_dir, tmp_path_factory):
    pipe = stpipe.build({"modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                                     {"type": "Pooling", "pooling_mode": "mean"}],
                         "prompts": {"query": "query: ", "document": "passage: "}}, device="cpu")
    saved = tmp_path_factory.mktemp("dense")
    pipe.save(str(saved))
    return pipe, SentenceTransformer(str(saved), device="cpu")


@pytest.fixture(scope="module")
def sparse(tiny_mlm_dir, tmp_path_factory):
    pipe = stpipe.build({"model_type": "SparseEncoder",
                         "modules": [{"type": "Transformer", "model_name_or_path": str(tiny_mlm_dir),
                                      "transformer_task": "fill-mask"},
                                     {"type": "SpladePooling", "pooling_strategy": "max"}]}, device="cpu")
    saved = tmp_path_factory.mktemp("sparse")
    pipe.save(str(saved))
    return pipe, SparseEncoder(str(saved), device="cpu")


def test_dense_matches_oracle(dense, beir_dir):
    pipe, st = dense
    q = pipe.encode_query(["x"], convert_to_tensor=True)
    d = pipe.encode_document(["Doc the cat runs in the house"] * 2, convert_to_tensor=True)
    assert torch.equal(pipe.similarity(q, d)[0, 0], pipe.similarity(q, d)[0, 1])  # the duplicate is an exact tie
    result = evaluate(pipe, data(beir_dir))
    assert_parity(result, InformationRetrievalEvaluator(**oracle_inputs())(st), "cosine")
    assert result["similarity"] == "cosine"


def test_dense_with_dot_similarity_matches_oracle(dense, beir_dir):
    pipe, st = dense
    pipe.similarity_fn_name, st.similarity_fn_name = "dot", "dot"
    try:
        assert_parity(evaluate(pipe, data(beir_dir)), InformationRetrievalEvaluator(**oracle_inputs())(st), "dot")
    finally:
        pipe.similarity_fn_name, st.similarity_fn_name = "cosine", "cosine"


def test_sparse_matches_oracle(sparse, beir_dir):
    pipe, st = sparse
    result = evaluate(pipe, data(beir_dir))
    assert result["similarity"] == "dot"
    assert_parity(result, SparseInformationRetrievalEvaluator(**oracle_inputs())(st), "dot")


@pytest.mark.parametrize("chunk", [1, 2, 4, 7])
def test_chunked_corpus_gives_the_same_metrics(dense, sparse, beir_dir, chunk):
    """One input per batch: a batch's padding moves embeddings in their last bits, which can flip the duplicate
    documents' exact tie; with the same embeddings, every chunking ranks alike."""
    for pipe, _ in (dense, sparse):
        whole = evaluate(pipe, data(beir_dir), batch_size=1)
        assert evaluate(pipe, data(beir_dir, corpus_chunk_size=chunk), batch_size=1) == whole


def test_ties_are_broken_by_corpus_id_in_every_chunking():
    """Six documents tie at 0.5 for the last two places: the smallest ids win, however the corpus is cut."""
    scores = torch.tensor([[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.75, 0.125]])
    ids = ["f", "e", "d", "c", "b", "a", "z", "y"]
    expected = [(0.75, "z"), (0.5, "a"), (0.5, "b")]
    for size in (1, 2, 3, 8):
        top: list = []
        for start in range(0, len(ids), size):
            part = scores[:, start:start + size]
            for cands in chunk_candidates(part, ids[start:start + size], min(3, part.shape[1])):
                top = merge_top_k(top, cands, 3)
        assert top == expected, size


def test_qrels_naming_documents_absent_from_the_corpus_are_reported(dense, beir_dir):
    from stpipe.experiments.evaluators import render_result

    result = evaluate(dense[0], {"evaluator": "retrieval", "path": str(beir_dir), **KS})
    assert result["missing_documents"] == {"count": 1, "examples": ["d99"], "queries": 1, "query_examples": ["q4"]}
    assert "1 relevant document(s) named by the qrels are not in the corpus (e.g. d99" in render_result(result)
