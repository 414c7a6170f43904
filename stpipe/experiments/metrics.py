"""The numbers evaluators report, in numpy (scipy is a dev dependency only): Pearson and Spearman correlation
as ``scipy.stats`` computes them, and the ranking metrics of sentence-transformers'
``InformationRetrievalEvaluator`` (binary relevance; nDCG's ideal ranking puts every relevant document first).

>>> rankdata([10, 20, 20, 5])
array([2. , 3.5, 3.5, 1. ])
>>> round(spearman([1, 2, 3, 4], [1, 3, 2, 4]), 6)
0.8
>>> ranking_metrics([["d1", "d2"]], [{"d2"}], {"mrr": [10], "ndcg": [10]})
{'mrr@10': 0.5, 'ndcg@10': 0.6309297535714575}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: ranking metric → what it is; each is computed for every k of its list (``ndcg@10``)
RANKING_METRICS = ("accuracy", "precision", "recall", "mrr", "ndcg", "map")


def rankdata(values: Any) -> np.ndarray:
    """Ranks from 1, ties given the average of the ranks they span (``scipy.stats.rankdata(method="average")``)."""
    a = np.asarray(values, dtype=np.float64).ravel()
    n = a.size
    order = np.argsort(a, kind="mergesort")
    ordered = a[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]] if n else np.zeros(0, dtype=bool)
    group = np.cumsum(starts)  # 1-based group index of each sorted value
    bounds = np.r_[np.nonzero(starts)[0], n]  # where each group starts (and the end)
    average = 0.5 * (bounds[group] + bounds[group - 1] + 1)
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = average
    return ranks


def pearson(x: Any, y: Any) -> float:
    """Pearson's r (float64); NaN when either side is constant, as scipy returns."""
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.size != b.size:
        raise ValueError(f"pearson: x and y have different lengths ({a.size} and {b.size})")
    if a.size < 2:
        raise ValueError("pearson: x and y must have length at least 2")
    a = a - a.mean()
    b = b - b.mean()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return math.nan
    return float(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))


def spearman(x: Any, y: Any) -> float:
    """Spearman's rho: Pearson's r of the average ranks (``scipy.stats.spearmanr``)."""
    return pearson(rankdata(x), rankdata(y))


def _dcg(relevances: Sequence[int], k: int) -> float:
    return sum(rel / math.log2(i + 2) for i, rel in enumerate(relevances[:k]))


def ranking_metrics(rankings: Sequence[Sequence[str]], relevant: Sequence[set[str]],
                    ks: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """Mean over queries of each metric at each k, named ``<metric>@<k>``.

    ``rankings[q]``: the retrieved ids of query q, best first (at least max k of them when the corpus has them);
    ``relevant[q]``: its relevant ids (not empty); ``ks``: metric name (:data:`RANKING_METRICS`) → its k values.
    Precision@k divides by k, recall@k by the number of relevant ids, MAP@k's average precision by
    min(k, number relevant) — sentence-transformers' definitions."""
    n = len(rankings)
    if n == 0 or n != len(relevant):
        raise ValueError(f"ranking_metrics needs one relevant set per ranking and at least one ({n}, {len(relevant)})")
    sums: dict[str, float] = {f"{m}@{k}": 0.0 for m in ks for k in ks[m]}
    for hits, rel in zip(rankings, relevant, strict=True):
        flags = [1 if h in rel else 0 for h in hits]
        first = next((i for i, f in enumerate(flags) if f), None)
        for m, k_values in ks.items():
            for k in k_values:
                sums[f"{m}@{k}"] += _one(m, k, flags, first, len(rel))
    return {name: total / n for name, total in sums.items()}


def _one(metric: str, k: int, flags: list[int], first: int | None, n_relevant: int) -> float:
    """One query's value of ``metric@k`` (``flags``: 1 where the ranked id is relevant; ``first``: its first 1)."""
    top = flags[:k]
    if metric == "accuracy":
        return 1.0 if any(top) else 0.0
    if metric == "precision":
        return sum(top) / k
    if metric == "recall":
        return sum(top) / n_relevant
    if metric == "mrr":
        return 1.0 / (first + 1) if first is not None and first < k else 0.0
    if metric == "ndcg":
        return _dcg(top, k) / _dcg([1] * n_relevant, k)
    if metric == "map":
        correct, total = 0, 0.0
        for i, f in enumerate(top):
            if f:
                correct += 1
                total += correct / (i + 1)
        return total / min(k, n_relevant)
    raise ValueError(f"unknown ranking metric {metric!r}; one of {', '.join(RANKING_METRICS)}")


#: parts of a metric's name that say lower is better (a loss, an error, a distance, a time)
_LOWER_IS_BETTER = ("loss", "error", "perplexity", "seconds", "time", "mse", "mae", "rmse")


def direction(metric: str | None) -> str:
    """``maximize`` for a metric where higher is better (correlations, nDCG, MRR, accuracy … and every verb's main
    metric), ``minimize`` for a loss, an error or a time — what an optimising sweeper should do with it.

    >>> direction("spearman_cosine"), direction("ndcg@10"), direction("train_loss"), direction(None)
    ('maximize', 'maximize', 'minimize', 'maximize')
    """
    name = (metric or "").lower()
    return "minimize" if any(part in name for part in _LOWER_IS_BETTER) else "maximize"
