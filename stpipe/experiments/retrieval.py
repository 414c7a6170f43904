"""The ``retrieval`` evaluator: rank a BEIR corpus for each query and report accuracy@k, precision@k, recall@k,
MRR@k, nDCG@k and MAP@k, as sentence-transformers' ``InformationRetrievalEvaluator`` computes them.

Queries go through ``encode_query``, documents through ``encode_document``, and the model's own similarity
scores them (``Pipeline.similarity``: dot product of sparse vectors for a SparseEncoder). The corpus is read,
encoded and scored ``corpus_chunk_size`` documents at a time; only a running top-k per query is kept, so memory
stays flat however large the corpus. Ranking is by (descending score, ascending corpus id) — the total order
sentence-transformers uses — so ties resolve the same way and the metrics do not depend on the chunk size.
Only queries with at least one relevant document (qrels score > 0) are evaluated, as sentence-transformers does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from stpipe.errors import ConfigError, Problem
from stpipe.experiments.data import TITLE, DataConfig, collect, raise_problems
from stpipe.experiments.evaluators import Evaluator
from stpipe.experiments.metrics import ranking_metrics
from stpipe.experiments.readers import beir_file_problems, beir_files, iter_corpus, iter_qrels, iter_records

#: the default cut-offs (sentence-transformers' defaults)
DEFAULT_K = {"accuracy": [1, 3, 5, 10], "precision": [1, 3, 5, 10], "recall": [1, 3, 5, 10], "mrr": [10],
             "ndcg": [10], "map": [100]}
#: data config key → the metrics it sets
K_KEYS = {"accuracy_at_k": ("accuracy",), "precision_recall_at_k": ("precision", "recall"), "mrr_at_k": ("mrr",),
          "ndcg_at_k": ("ndcg",), "map_at_k": ("map",)}
DEFAULT_CHUNK = 50000

Hit = tuple[float, str]  # (score, corpus id)


def merge_top_k(hits: list[Hit], candidates: Iterable[Hit], k: int) -> list[Hit]:
    """The best ``k`` of ``hits`` (already ranked) and ``candidates`` by (descending score, ascending id).

    >>> merge_top_k([(0.9, "b")], [(0.9, "a"), (0.1, "c")], 2)
    [(0.9, 'a'), (0.9, 'b')]
    """
    merged = hits + list(candidates)
    merged.sort(key=lambda h: (-h[0], h[1]))
    return merged[:k]


def chunk_candidates(scores: torch.Tensor, ids: list[str], k: int) -> Iterator[list[Hit]]:
    """For each row of ``scores`` (queries × chunk documents), the documents that can enter its top ``k``: the
    ``k`` best, and every document tied with the k-th best (which of them survive is decided by id)."""
    n = scores.shape[1]
    if n <= k:
        for row in scores.tolist():
            yield list(zip(row, ids, strict=True))
        return
    values, index = torch.topk(scores, k, dim=1, largest=True, sorted=False)
    thresholds = values.min(dim=1, keepdim=True).values
    ties = ((scores >= thresholds).sum(dim=1) > k).tolist()
    values_l, index_l = values.tolist(), index.tolist()
    for q, tied in enumerate(ties):
        if tied:
            cols = torch.nonzero(scores[q] >= thresholds[q]).flatten().tolist()
            row = scores[q, cols].tolist()
            yield [(s, ids[c]) for s, c in zip(row, cols, strict=True)]
        else:
            yield [(s, ids[c]) for s, c in zip(values_l[q], index_l[q], strict=True)]


class RetrievalEvaluator(Evaluator):
    """Information retrieval metrics on a BEIR directory (``evaluator: retrieval``); the main metric is
    ``ndcg@<largest k of ndcg_at_k>``. Metric names: ``accuracy@1``, ``precision@1``, ``recall@1``, ``mrr@10``,
    ``ndcg@10``, ``map@100`` … (sentence-transformers prefixes them with the similarity name: ``cosine_ndcg@10``)."""

    name = "retrieval"
    builtin = True

    def ks(self) -> dict[str, list[int]]:
        """Metric name → its cut-offs (the config's lists, else the defaults)."""
        out = {m: list(v) for m, v in DEFAULT_K.items()}
        for key, metrics in K_KEYS.items():
            given = self.config.get(key)
            if given is not None:
                for m in metrics:
                    out[m] = [int(k) for k in given]
        return out

    @classmethod
    def check_data(cls, config: DataConfig) -> Iterable[Problem]:
        missing = beir_file_problems(config)
        if missing:
            return missing
        corpus, queries, qrels = beir_files(config)
        problems = collect(iter_records(config, queries), config) + collect(iter_qrels(config), config)
        n_docs = 0

        def count() -> Iterator[Any]:
            nonlocal n_docs
            for item in iter_corpus(config):
                n_docs += not isinstance(item, Problem)
                yield item

        problems += collect(count(), config)
        if not problems and n_docs == 0:
            problems.append(config.problem("data.empty", f"'{corpus}' holds no document", file=corpus))
        if not problems:
            problems += cls._load_queries(config)[1]
        return problems

    @staticmethod
    def _load_queries(config: DataConfig) -> tuple[tuple[list[str], list[str], list[set[str]]], list[Problem]]:
        """(ids, texts, relevant ids) of the queries that have a relevant document; or the problem that none has."""
        records = raise_problems(iter_records(config, beir_files(config)[1]), config)
        relevant: dict[str, set[str]] = {}
        for qid, cid, score in raise_problems(iter_qrels(config), config):
            if score > 0:
                relevant.setdefault(qid, set()).add(cid)
        kept = [(qid, text) for qid, text in records if relevant.get(qid)]
        if not kept:
            qrels = beir_files(config)[2]
            return ([], [], []), [config.problem(
                "data.empty", f"no query of queries.jsonl has a relevant document (score > 0) in '{qrels}'",
                file=qrels, hint="check that the qrels file's query ids are the _id values of queries.jsonl")]
        return ([q for q, _ in kept], [t for _, t in kept], [relevant[q] for q, _ in kept]), []

    def _encode(self, pipeline: Any, texts: list[str], side: str, batch_size: int, progress: bool) -> Any:
        fn = pipeline.encode_query if side == "query" else pipeline.encode_document
        kw: dict[str, Any] = {"batch_size": batch_size, "show_progress_bar": progress, "convert_to_tensor": True}
        if getattr(pipeline, "model_type", None) == "SparseEncoder":
            kw["convert_to_sparse_tensor"] = True
        return fn(texts, **kw)

    def _chunks(self, size: int) -> Iterator[tuple[list[str], list[str]]]:
        """The corpus, ``size`` documents at a time, as (ids, texts); a bad line stops with a ConfigError."""
        ids: list[str] = []
        texts: list[str] = []
        for item in iter_corpus(self.config):
            if isinstance(item, Problem):
                raise ConfigError([item], title=TITLE)
            ids.append(item[0])
            texts.append(item[1])
            if len(ids) == size:
                yield ids, texts
                ids, texts = [], []
        if ids:
            yield ids, texts

    def __call__(self, pipeline: Any, *, batch_size: int = 32, show_progress_bar: bool = False) -> dict[str, Any]:
        (qids, queries, relevant), problems = self._load_queries(self.config)
        if problems:
            raise ConfigError(problems, title=TITLE)
        ks = self.ks()
        max_k = max(k for values in ks.values() for k in values)
        chunk = int(self.config.get("corpus_chunk_size", DEFAULT_CHUNK))
        q_emb = self._encode(pipeline, queries, "query", batch_size, show_progress_bar)
        top: list[list[Hit]] = [[] for _ in qids]
        n_docs = 0
        unseen = set().union(*relevant)  # relevant ids not met in the corpus yet
        for ids, texts in self._chunks(chunk):
            unseen.difference_update(ids)
            d_emb = self._encode(pipeline, texts, "document", batch_size, show_progress_bar)
            scores = pipeline.similarity(q_emb, d_emb).float().cpu()
            for q, candidates in enumerate(chunk_candidates(scores, ids, min(max_k, len(ids)))):
                top[q] = merge_top_k(top[q], candidates, max_k)
            n_docs += len(ids)
        if n_docs == 0:
            raise ConfigError([self.config.problem("data.empty", "the corpus holds no document",
                                                   file=beir_files(self.config)[0])], title=TITLE)
        metrics = ranking_metrics([[cid for _, cid in hits] for hits in top], relevant, ks)
        extra = {"missing_documents": missing_documents(unseen, relevant, qids)} if unseen else {}
        return self.result(metrics, f"ndcg@{max(ks['ndcg'])}", len(qids), n_corpus=n_docs,
                           similarity=pipeline.similarity_fn_name, **extra,
                           warnings=[missing_warning(extra["missing_documents"])] if unseen else [])


def missing_documents(unseen: set[str], relevant: list[set[str]], qids: list[str]) -> dict[str, Any]:
    """The relevant documents of the qrels that the corpus does not hold: ``{"count", "examples", "queries"}``
    (they still count as relevant — recall cannot reach 1 —, as sentence-transformers counts them)."""
    examples = sorted(unseen)[:5]
    affected = sum(1 for rel in relevant if rel & unseen)
    return {"count": len(unseen), "examples": examples, "queries": affected, "query_examples":
            [q for q, rel in zip(qids, relevant, strict=True) if rel & unseen][:5]}


def missing_warning(missing: dict[str, Any]) -> str:
    return (f"{missing['count']} relevant document(s) named by the qrels are not in the corpus (e.g. "
            f"{', '.join(missing['examples'])}; {missing['queries']} query(ies) affected): they count as relevant "
            "but can never be retrieved, so recall and nDCG of those queries cannot reach 1 — check the qrels split "
            "and the corpus")
