"""stpipe's own Pearson / Spearman / ranking metrics against scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from stpipe.experiments.metrics import pearson, rankdata, ranking_metrics, spearman


@pytest.mark.parametrize("seed", range(20))
def test_pearson_and_spearman_match_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 200))
    gold = rng.integers(0, 6, n) / 5  # many ties, like STS gold scores
    pred = np.round(rng.normal(size=n), 1)  # ties on this side too
    assert pearson(gold, pred) == pytest.approx(stats.pearsonr(gold, pred)[0], abs=1e-12)
    assert spearman(gold, pred) == pytest.approx(stats.spearmanr(gold, pred)[0], abs=1e-12)
    np.testing.assert_array_equal(rankdata(pred), stats.rankdata(pred))


def test_constant_side_is_nan_and_bad_lengths_raise():
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError, match="different lengths"):
        pearson([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least 2"):
        spearman([1], [1])


def test_ranking_metrics_by_hand():
    ks = {"accuracy": [1, 3], "precision": [1, 3], "recall": [1, 3], "mrr": [3], "ndcg": [3], "map": [3]}
    # query 1: relevant at ranks 2 and 3 of 3; query 2: its one relevant document is not retrieved
    m = ranking_metrics([["x", "a", "b"], ["y", "z"]], [{"a", "b"}, {"c"}], ks)
    assert m["accuracy@1"] == 0 and m["accuracy@3"] == 0.5
    assert m["precision@3"] == pytest.approx((2 / 3) / 2) and m["recall@3"] == pytest.approx(0.5)
    assert m["mrr@3"] == pytest.approx(0.5 / 2)
    ideal = 1 + 1 / math.log2(3)
    assert m["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / ideal / 2)
    assert m["map@3"] == pytest.approx((1 / 2 + 2 / 3) / 2 / 2)
