"""The pair losses (:mod:`stpipe.training.losses.pairs`) on two pairs, worked out by hand."""

from __future__ import annotations

import math

import torch

from stpipe.training.losses.pairs import CoSENTLoss, CosineSimilarityLoss

# cosines of the two pairs: 0.8 and 0.0
PAIRS = [torch.tensor([[3.0, 4.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])]


def test_cosine_similarity_loss_is_the_mse_to_the_scores():
    loss = CosineSimilarityLoss()(PAIRS, torch.tensor([1.0, 0.0]))
    assert math.isclose(loss.item(), ((0.8 - 1.0) ** 2 + 0.0) / 2, rel_tol=1e-6)


def test_cosent_penalises_only_pairs_in_the_wrong_order():
    right = CoSENTLoss(scale=1.0)(PAIRS, torch.tensor([1.0, 0.0]))  # pair 0 above pair 1: as scored
    wrong = CoSENTLoss(scale=1.0)(PAIRS, torch.tensor([0.0, 1.0]))  # pair 1 should be above pair 0
    assert math.isclose(right.item(), math.log(1 + math.exp(0.0 - 0.8)), rel_tol=1e-6)
    assert math.isclose(wrong.item(), math.log(1 + math.exp(0.8 - 0.0)), rel_tol=1e-6)
