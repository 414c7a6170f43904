"""The ``reranking`` evaluator: a CrossEncoder scores each query against its positive and negative documents, and
MAP, MRR@k and nDCG@k of that ranking are reported, as sentence-transformers' ``CrossEncoderRerankingEvaluator``
computes them (the main metric is ``ndcg@<at_k>``, default 10).

Data: a JSONL file, one ``{"query": str, "positive": [str, ...] | str, "negative": [str, ...]}`` per line, checked
line by line before any weight loads. Every pair of the file is scored in one ``predict`` call. A query without a
positive scores 0 on every metric (sentence-transformers' rule); it still counts in the means.

The metrics, for one query with binary relevance ``y`` and predicted scores ``s``:

* MRR@k: 1 / the rank of the first relevant document among the top k (documents ordered as
  ``numpy.argsort(s)[::-1]``, sentence-transformers' order), else 0;
* nDCG@k: scikit-learn's ``ndcg_score`` (tied scores share the average gain of their group), computed here in numpy;
* MAP: scikit-learn's ``average_precision_score`` (the precision at each distinct score threshold, weighted by the
  recall it adds), computed here in numpy.

>>> round(ndcg_at_k([0, 1, 0], [0.3, 0.2, 0.1], 10), 6), mrr_at_k([0, 1, 0], [0.3, 0.2, 0.1], 10)
(0.63093, 0.5)
>>> average_precision([1, 0, 1], [0.9, 0.5, 0.5])
0.8333333333333333
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from stpipe.errors import Problem
from stpipe.experiments.data import DataConfig, collect, raise_problems
from stpipe.experiments.evaluators import Evaluator

DEFAULT_AT_K = 10
#: the layouts the reranking evaluator reads (``format`` in the data config; the only one is the default)
RERANKING_FORMATS = ("jsonl",)


class Sample(NamedTuple):
    query: str
    positive: list[str]
    negative: list[str]
    line: int


def mrr_at_k(relevant: Sequence[int], scores: Sequence[float], k: int) -> float:
    """1 / rank of the first relevant document in the top ``k`` (0 when none)."""
    order = np.argsort(np.asarray(scores))[::-1]
    for rank, index in enumerate(order[:k]):
        if relevant[index]:
            return 1.0 / (rank + 1)
    return 0.0


def _tie_averaged_dcg(gains: np.ndarray, scores: np.ndarray, k: int) -> float:
    discount = 1.0 / np.log2(np.arange(len(gains)) + 2)
    discount[k:] = 0.0
    cumulative = np.cumsum(discount)
    _, inverse, counts = np.unique(-scores, return_inverse=True, return_counts=True)
    group_gain = np.zeros(len(counts))
    np.add.at(group_gain, inverse, gains)
    group_gain /= counts
    ends = np.cumsum(counts) - 1
    group_discount = np.diff(cumulative[ends], prepend=0.0)
    return float((group_gain * group_discount).sum())


def ndcg_at_k(relevant: Sequence[int], scores: Sequence[float], k: int) -> float:
    """Normalised DCG of the top ``k`` (tied scores share their group's average gain); 0 without relevant ones."""
    gains, s = np.asarray(relevant, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    ideal = _tie_averaged_dcg(gains, gains, k)
    return 0.0 if ideal == 0 else _tie_averaged_dcg(gains, s, k) / ideal


def average_precision(relevant: Sequence[int], scores: Sequence[float]) -> float:
    """Σ over distinct score thresholds (descending) of precision × the recall gained there."""
    y, s = np.asarray(relevant, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    ends = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last index of each run of equal scores
    tp = np.cumsum(y)[ends]
    precision = tp / (ends + 1)
    recall_gain = np.diff(tp, prepend=0.0) / max(y.sum(), 1.0)
    return float((precision * recall_gain).sum())


def _texts(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return list(value)
    return None


def iter_samples(config: DataConfig) -> Iterator[Sample | Problem]:
    """The samples of the JSONL file, and a Problem (``file:line``) for each malformed line."""
    from stpipe.experiments.readers import _missing_file, iter_jsonl

    f = config.path
    if not f.is_file():
        yield _missing_file(config, f, "reranking data file")
        return
    for item in iter_jsonl(config, f):
        if isinstance(item, Problem):
            yield item
            continue
        n, obj = item
        missing = [k for k in ("query", "positive", "negative") if k not in obj]
        unknown = sorted(set(obj) - {"query", "positive", "negative"})
        if missing or unknown:
            what = f"no key '{missing[0]}'" if missing else f"unknown key '{unknown[0]}'"
            yield config.problem("data.columns", what, line=n, file=f, found=", ".join(obj),
                                 hint='each line: {"query": "...", "positive": ["..."], "negative": ["...", ...]}')
            continue
        positive, negative = _texts(obj["positive"]), _texts(obj["negative"])
        if not isinstance(obj["query"], str) or positive is None or negative is None or \
                isinstance(obj["negative"], str):
            bad = "query" if not isinstance(obj["query"], str) else "positive" if positive is None else "negative"
            kind = "a string" if bad == "query" else "a list of strings"
            yield config.problem("data.line", f"'{bad}' must be {kind}", line=n, file=f, found=repr(obj[bad])[:60])
            continue
        yield Sample(obj["query"], positive, negative, n)


class RerankingEvaluator(Evaluator):
    """MAP, MRR@k and nDCG@k of a CrossEncoder's ranking of each query's positives and negatives."""

    name = "reranking"
    builtin = True

    @classmethod
    def check_data(cls, config: DataConfig) -> Iterable[Problem]:
        problems = collect(iter_samples(config), config)
        if not problems and config.path.is_file() and not any(True for _ in iter_samples(config)):
            problems = [config.problem("data.empty", "the file holds no samples", file=config.path)]
        return problems

    def __call__(self, pipeline: Any, *, batch_size: int = 32, show_progress_bar: bool = False) -> dict[str, Any]:
        samples = raise_problems(iter_samples(self.config), self.config)
        k = int(self.config.get("at_k", DEFAULT_AT_K))
        pairs = [(s.query, d) for s in samples if s.positive for d in s.positive + s.negative]
        scores = pipeline.predict(pairs, batch_size=batch_size, show_progress_bar=show_progress_bar,
                                  convert_to_numpy=True) if pairs else np.array([])
        per_query, offset = [], 0
        for s in samples:
            if not s.positive:
                per_query.append((0.0, 0.0, 0.0))
                continue
            rel = [1] * len(s.positive) + [0] * len(s.negative)
            part = scores[offset:offset + len(rel)]
            offset += len(rel)
            per_query.append((average_precision(rel, part), mrr_at_k(rel, part, k), ndcg_at_k(rel, part, k)))
        means = np.mean(np.array(per_query), axis=0) if per_query else np.zeros(3)
        metrics = {"map": means[0], f"mrr@{k}": means[1], f"ndcg@{k}": means[2]}
        return self.result(metrics, f"ndcg@{k}", len(samples))
