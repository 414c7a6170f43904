"""Ranking losses for (anchor, positive[, negative …]) data: in-batch negatives; SPLADE's FLOPS-regularised one."""

from __future__ import annotations

from typing import Any

import torch

from stpipe.training.losses.base import Loss, cosine_matrix


class MultipleNegativesRankingLoss(Loss):
    """Cross-entropy over ``scale · sim(anchor_i, candidate_j)``: each anchor's own positive is the right class;
    every other positive in the batch, and every hard negative column, is a wrong one."""

    min_inputs, max_inputs = 2, None
    input_names = ("anchor", "positive")
    schema = {"scale": {"type": "number", "exclusiveMinimum": 0, "description": "Multiplier of the similarities "
                        "(default 20)."},
              "similarity": {"enum": ["cosine", "dot"], "description": "cosine (default) or dot."}}

    def __init__(self, scale: float = 20.0, similarity: str = "cosine") -> None:
        super().__init__()
        self.scale, self.similarity = float(scale), similarity

    def scores(self, anchors: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return (cosine_matrix(anchors, candidates) if self.similarity == "cosine" else anchors @ candidates.T) \
            * self.scale

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        anchors, candidates = embeddings[0], torch.cat(embeddings[1:])
        target = torch.arange(len(anchors), device=anchors.device)
        return torch.nn.functional.cross_entropy(self.scores(anchors, candidates), target)


def flops(x: torch.Tensor) -> torch.Tensor:
    """The FLOPS regulariser: Σ_j (mean_i |x_ij|)²."""
    return torch.sum(torch.mean(torch.abs(x), dim=0) ** 2)


class SpladeLoss(MultipleNegativesRankingLoss):
    """Ranking loss on sparse embeddings (dot product, scale 1 by default) plus FLOPS regularisers on the queries
    (the first column) and on the documents (the others), weighted separately."""

    schema = {**MultipleNegativesRankingLoss.schema,
              "query_regularizer_weight": {"type": "number", "minimum": 0, "description": "default 5e-5"},
              "document_regularizer_weight": {"type": "number", "minimum": 0, "description": "default 3e-5"}}

    def __init__(self, scale: float = 1.0, similarity: str = "dot", query_regularizer_weight: float = 5e-5,
                 document_regularizer_weight: float = 3e-5) -> None:
        super().__init__(scale, similarity)
        self.query_regularizer_weight = float(query_regularizer_weight)
        self.document_regularizer_weight = float(document_regularizer_weight)
        self.last: dict[str, Any] = {}

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        ranking = super().compute(embeddings, labels)
        q = flops(embeddings[0])
        d = flops(torch.cat(embeddings[1:]))
        return ranking + self.query_regularizer_weight * q + self.document_regularizer_weight * d
