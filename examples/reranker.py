"""A reranker: a CrossEncoder declared in ``conf/model/reranker.yaml`` (one Transformer with
``transformer_task: sequence-classification``), built with ``stpipe.build``; ``predict`` scores (query, document)
pairs and ``rank`` orders documents for a query, as sentence-transformers' ``CrossEncoder`` does.

    python examples/make_standins.py   # once (the example also does it when stand-ins are missing)
    python examples/reranker.py

Stand-in (see make_standins.py): ``minilm-rerank`` replaces cross-encoder/ms-marco-MiniLM-L6-v2: the bundled
MiniLM with an UNTRAINED (seeded) classifier head, so the scores show the wiring, not relevance.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from make_standins import ensure_standins  # noqa: E402

import stpipe  # noqa: E402
from stpipe.resources import conf_dir  # noqa: E402


def main() -> None:
    ensure_standins(["minilm-rerank"])
    model = stpipe.build(conf_dir() / "model" / "reranker.yaml", device="cpu")
    print(f"built {model.name}: {model.model_type}, {model.num_labels} label, activation {model.activation_fn_name}")

    query = "How many people live in Berlin?"
    documents = [
        "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers.",
        "Berlin is well known for its museums.",
        "In 2014, the city state Berlin had 37,368 live births (+6.6%), a record number since 1991.",
    ]
    scores = model.predict([(query, doc) for doc in documents])
    print(f"predict: {len(scores)} scores, e.g. {scores[0]:.4f}")

    for hit in model.rank(query, documents, top_k=2, return_documents=True):
        print(f"rank: corpus_id={hit['corpus_id']} score={hit['score']:.4f} {hit['text'][:40]}")


if __name__ == "__main__":
    main()
