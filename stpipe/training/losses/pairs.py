"""Losses for scored pairs (sentence1, sentence2, score in 0..1)."""

from __future__ import annotations

import torch

from stpipe.training.losses.base import Loss, cosine_pairs


class CosineSimilarityLoss(Loss):
    """Mean squared error between the pair's cosine similarity and its score (sentence-transformers' definition)."""

    needs_label = True
    schema = {}

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        assert labels is not None
        cos = cosine_pairs(embeddings[0], embeddings[1])
        return torch.nn.functional.mse_loss(cos, labels.to(cos.dtype).view(-1))


class CoSENTLoss(Loss):
    """CoSENT: for every two pairs (i, j) with score_i < score_j, penalise cos_i > cos_j:
    ``log(1 + Σ exp(scale · (cos_i − cos_j)))`` over those (i, j)."""

    needs_label = True
    schema = {"scale": {"type": "number", "exclusiveMinimum": 0, "description": "Multiplier of the cosine "
                        "differences (default 20)."}}

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        self.scale = float(scale)

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        assert labels is not None
        s = cosine_pairs(embeddings[0], embeddings[1]) * self.scale
        diff = s[:, None] - s[None, :]  # diff[i, j] = s_i - s_j
        y = labels.to(s.dtype).view(-1)
        lower = (y[:, None] < y[None, :]).to(s.dtype)  # pairs (i, j) where i should score below j
        diff = diff - (1.0 - lower) * 1e12
        return torch.logsumexp(torch.cat([diff.new_zeros(1), diff.view(-1)]), dim=0)
