"""MatryoshkaLoss (:mod:`stpipe.training.losses.matryoshka`): the inner loss at each dimension, weighted."""

from __future__ import annotations

import math

import pytest
import torch

from stpipe.errors import ConfigError
from stpipe.training.losses.matryoshka import MatryoshkaLoss
from stpipe.training.losses.pairs import CosineSimilarityLoss


def test_the_weighted_sum_over_leading_dimensions():
    a, b = torch.tensor([[1.0, 0.0, 5.0]]), torch.tensor([[1.0, 1.0, 0.0]])
    loss = MatryoshkaLoss(CosineSimilarityLoss(), [1, 2], [2.0, 1.0])([a, b], torch.tensor([0.0]))
    # dim 1: cos = 1 → (1 - 0)² ; dim 2: cos = 1/√2 → 0.5
    assert math.isclose(loss.item(), 2.0 * 1.0 + 1.0 * 0.5, rel_tol=1e-6)


def test_one_weight_per_dimension():
    with pytest.raises(ConfigError, match="one weight per dimension"):
        MatryoshkaLoss(CosineSimilarityLoss(), [1, 2], [1.0])
