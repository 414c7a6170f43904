"""The ranking losses (:mod:`stpipe.training.losses.ranking`): in-batch negatives and the FLOPS regulariser."""

from __future__ import annotations

import math

import torch

from stpipe.training.losses.ranking import MultipleNegativesRankingLoss, SpladeLoss, flops


def test_each_anchor_against_every_candidate_of_the_batch():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    loss = MultipleNegativesRankingLoss(scale=1.0)([anchors, positives])
    # anchor 0: cos (1, 1), right class 0 → log(2) - ... ; anchor 1: cos (0, 0) → log(2)
    expected = (-math.log(math.exp(1) / (math.exp(1) + math.exp(1))) - math.log(0.5)) / 2
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)


def test_flops_and_the_splade_loss_adds_it_per_side():
    x = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    assert math.isclose(flops(x).item(), 2.0 ** 2 + 1.0 ** 2)
    q, d = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    base = MultipleNegativesRankingLoss(scale=1.0, similarity="dot")([q, d]).item()
    loss = SpladeLoss(query_regularizer_weight=0.5, document_regularizer_weight=0.25)([q, d]).item()
    assert math.isclose(loss, base + 0.5 * 1.0 + 0.25 * 4.0, rel_tol=1e-6)
