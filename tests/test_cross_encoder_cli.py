"""``stpipe predict`` / ``stpipe rank`` (in process): the scores and hits ``CrossEncoder.predict``/``rank`` give, the
files they write, and exit 2 with a clear message for each mistake — before any weight loads where it can be."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cross_encoder import DOCS, PAIRS, write_classifier

import stpipe
from stpipe.cli import main


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def model_yaml(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli-ce")
    cls = write_classifier(d / "cls")
    f = d / "rr.yaml"
    f.write_text(f"model_type: CrossEncoder\nname: rr\nmodules:\n  - type: Transformer\n    model_name_or_path: {cls}\n"
                 "    transformer_task: sequence-classification\n")
    return f


@pytest.fixture(scope="module")
def model(model_yaml):
    return stpipe.build(model_yaml, device="cpu")


@pytest.fixture()
def pairs_tsv(tmp_path) -> Path:
    f = tmp_path / "pairs.tsv"
    f.write_text("".join(f"{q}\t{d}\n" for q, d in PAIRS))
    return f


@pytest.mark.slow  # the model is built twice
def test_predict_prints_and_writes_the_scores(capsys, model_yaml, model, pairs_tsv, tmp_path):
    want = model.predict(PAIRS)
    rc, out, err = cli(capsys, "predict", str(model_yaml), f"inputs={pairs_tsv}")
    assert rc == 0, err
    lines = out.splitlines()
    assert np.abs(np.array([json.loads(x)["score"] for x in lines[:-1]]) - want).max() <= 1e-6
    assert lines[-1].startswith(f"scored {len(PAIRS)} pairs with rr")
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("".join(json.dumps(list(p) if i % 2 else {"query": p[0], "document": p[1]}) + "\n"
                             for i, p in enumerate(PAIRS)))
    rc, out, err = cli(capsys, "predict", str(model_yaml), f"inputs={jsonl}", f"output={tmp_path / 's.npy'}",
                       "batch_size=2")
    assert rc == 0, err
    assert np.abs(np.load(tmp_path / "s.npy").ravel() - want).max() <= 1e-5


def test_rank_writes_the_hits_best_first(capsys, model_yaml, model, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n\n")
    rc, out, err = cli(capsys, "rank", str(model_yaml), "query=the cat", f"inputs={docs}", "top_k=3",
                       f"output={tmp_path / 'hits.jsonl'}")
    assert rc == 0, err
    hits = [json.loads(x) for x in (tmp_path / "hits.jsonl").read_text().splitlines()]
    want = model.rank("the cat", DOCS, top_k=3, return_documents=True)
    assert [h["corpus_id"] for h in hits] == [h["corpus_id"] for h in want]
    assert [h["text"] for h in hits] == [h["text"] for h in want]
    assert f"ranked {len(DOCS)} documents with rr -> " in out


@pytest.mark.parametrize("args, message", [
    (("rank", "{model}", "inputs={docs}"), "error [run.query] query: stpipe rank needs the query"),
    (("rank", "{model}", "query=x", "inputs={docs}", "output=h.npy"), "stpipe rank writes .jsonl files"),
    (("rank", "{model}", "query=x", "inputs={docs}", "top_k=0"), "top_k"),
    (("predict", "{model}", "inputs={bad}"), "bad.tsv:2: expected two tab-separated columns (query, document), "
                                             "found 1"),
    (("predict", "{model}", "inputs={docs}"), "reads pairs from a .tsv file"),
    (("predict", "inputs={pairs}"), "error [run.model-type] model_type: stpipe predict scores pairs with a "
                                    "CrossEncoder, but this model is a SentenceTransformer"),
    (("rank", "{embedder}", "query=x", "inputs={docs}"), "stpipe rank scores pairs with a CrossEncoder"),
    (("encode", "{model}", "inputs={docs}"), "encode() returns embeddings, but this is a CrossEncoder"),
])
def test_mistakes_exit_2_with_a_clear_message(capsys, model_yaml, pairs_tsv, tmp_path, tiny_bert_dir, args,
                                               message):
    (tmp_path / "docs.txt").write_text("a\nb\n")
    (tmp_path / "bad.tsv").write_text("q\td\nonly one column\n")
    emb = tmp_path / "emb.yaml"
    emb.write_text(f"modules:\n  - type: Transformer\n    model_name_or_path: {tiny_bert_dir}\n  - type: Pooling\n")
    names = {"model": model_yaml, "docs": tmp_path / "docs.txt", "bad": tmp_path / "bad.tsv", "pairs": pairs_tsv,
             "embedder": emb}
    rc, out, err = cli(capsys, *(a.format(**names) for a in args))
    assert rc == 2 and message in err and "Traceback" not in err


def test_the_shipped_reranker_validates(capsys, standins):
    """conf/model/reranker.yaml (without torch: tests/test_cross_encoder_example.py)."""
    rc, out, err = cli(capsys, "validate", "model=reranker", "--explain")
    assert rc == 0, err
    assert "type: CrossEncoder  activation: sigmoid" in out and "scores[1]" in out
