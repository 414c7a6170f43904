"""The loss base (:mod:`stpipe.training.losses.base`): cosine of row pairs and of all pairs, by hand."""

from __future__ import annotations

import torch

from stpipe.training.losses.base import cosine_matrix, cosine_pairs

A = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
B = torch.tensor([[0.0, 2.0], [2.0, 0.0]])


def test_cosines_by_hand():
    assert torch.allclose(cosine_pairs(A, B), torch.tensor([0.8, 1.0]))
    assert torch.allclose(cosine_matrix(A, B), torch.tensor([[0.8, 0.6], [0.0, 1.0]]))
