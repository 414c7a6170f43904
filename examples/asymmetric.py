"""Seed example 1: an asymmetric Router — static embeddings for queries, a transformer for documents — declared in
``conf/model/asymmetric.yaml`` and built with ``stpipe.build``.

    python examples/make_standins.py   # once (the example also does it when stand-ins are missing)
    python examples/asymmetric.py

Stand-ins (see make_standins.py): ``minilm-static`` (MiniLM's token embeddings as a StaticEmbedding) replaces
static-retrieval-mrl-en-v1 and the bundled all-MiniLM-L6-v2 replaces mxbai-embed-large-v1. As in the seed, the two
routes are not trained together ("requires more training to align the vector spaces").
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from make_standins import ensure_standins  # noqa: E402

import stpipe  # noqa: E402
from stpipe.resources import conf_dir  # noqa: E402


def main() -> None:
    ensure_standins(["minilm-static"])
    model = stpipe.build(conf_dir() / "model" / "asymmetric.yaml", device="cpu")
    print(f"built {model.name}: routes {list(model[0].sub_modules)}, dimension {model.get_embedding_dimension()}")

    # Use the query & document routes
    query_embedding = model.encode_query("What is the capital of France?")
    document_embedding = model.encode_document("Paris is the capital of France.")
    print(f"query embedding {query_embedding.shape}, document embedding {document_embedding.shape}")
    print(f"Similarity: {model.similarity(query_embedding, document_embedding)}")

    queries = ["What is the capital of France?", "How is the weather in New York?"]
    documents = ["Paris is the capital of France.", "Currently New York is rainy.", "A man is playing a guitar."]
    scores = model.similarity(model.encode_query(queries), model.encode_document(documents))
    for query, row in zip(queries, scores):
        best = int(row.argmax())
        print(f"query {query!r}: best document {documents[best]!r} ({float(row[best]):.4f})")


if __name__ == "__main__":
    main()
