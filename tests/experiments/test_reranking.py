"""The reranking metrics (:mod:`stpipe.experiments.reranking`) on rankings small enough to work out by hand."""

from __future__ import annotations

import math

import pytest

from stpipe.experiments.reranking import average_precision, mrr_at_k, ndcg_at_k


def test_mrr_is_one_over_the_rank_of_the_first_relevant_document():
    assert mrr_at_k([0, 1, 0], [0.9, 0.5, 0.1], k=10) == 0.5
    assert mrr_at_k([0, 1, 0], [0.9, 0.5, 0.1], k=1) == 0.0
    assert mrr_at_k([0, 0], [0.2, 0.1], k=10) == 0.0


def test_ndcg_by_hand_and_with_ties():
    # relevant at rank 2 of 3: DCG = 1/log2(3); ideal = 1/log2(2) = 1
    assert ndcg_at_k([0, 1, 0], [0.9, 0.5, 0.1], k=10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k([1, 0], [0.5, 0.5], k=10) == pytest.approx((1 + 1 / math.log2(3)) / 2)  # tie: mean gain
    assert ndcg_at_k([0, 0], [0.3, 0.1], k=10) == 0.0


def test_average_precision_by_hand():
    # relevant at ranks 1 and 3: (1/1 + 2/3) / 2
    assert average_precision([1, 0, 1], [0.9, 0.5, 0.1]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # one threshold: precision 1/2
