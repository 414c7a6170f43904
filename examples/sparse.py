"""Seed example 2: inference-free sparse retrieval — SparseStaticEmbedding (IDF weights) for queries, a fill-mask
Transformer + SpladePooling for documents, a SparseEncoder with dot similarity — declared in
``conf/model/sparse.yaml`` and built with ``stpipe.build``.

    python examples/make_standins.py   # once (the example also does it when stand-ins are missing)
    python examples/sparse.py

Stand-in (see make_standins.py): ``minilm-mlm`` replaces opensearch-neural-sparse-encoding-doc-v3-distill: the
bundled MiniLM as a masked LM whose MLM head is UNTRAINED (seeded), plus a small IDF table, so the numbers and
tokens below show the wiring, not retrieval quality.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from make_standins import ensure_standins  # noqa: E402

import stpipe  # noqa: E402
from stpipe.resources import conf_dir  # noqa: E402


def main() -> None:
    ensure_standins(["minilm-mlm"])
    model = stpipe.build(conf_dir() / "model" / "sparse.yaml", device="cpu")
    print(f"built {model.name}: {model.model_type}, similarity {model.similarity_fn_name}")

    query = "What's the weather in ny now?"
    document = "Currently New York is rainy."

    query_embed = model.encode_query(query)
    document_embed = model.encode_document(document)
    print(f"active dimensions: query {query_embed.coalesce().values().numel()}, "
          f"document {document_embed.coalesce().values().numel()} of {query_embed.shape[-1]}")

    sim = model.similarity(query_embed, document_embed)
    print(f"Similarity: {sim}")

    # Visualize top tokens for each text
    top_k = 10
    print(f"Top tokens {top_k} for each text:")

    decoded_query = model.decode(query_embed, top_k=top_k)
    decoded_document = model.decode(document_embed)

    for i in range(min(top_k, len(decoded_query))):
        query_token, query_score = decoded_query[i]
        doc_score = next((score for token, score in decoded_document if token == query_token), 0)
        if doc_score != 0:
            print(f"Token: {query_token}, Query score: {query_score:.4f}, Document score: {doc_score:.4f}")


if __name__ == "__main__":
    main()
