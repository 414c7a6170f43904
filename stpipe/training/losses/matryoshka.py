"""MatryoshkaLoss: a loss applied to the embeddings truncated to each of several dimensions, weighted and summed."""

from __future__ import annotations

from typing import Any

import torch

from stpipe.training.losses.base import Loss


class MatryoshkaLoss(Loss):
    """``Σ_k weight_k · loss(embeddings[..., :dim_k])`` (default weights 1); the columns are the inner loss's."""

    inner_loss_key = "loss"
    schema = {"loss": {"type": "object", "description": "The loss applied at each dimension: {name: …, params}."},
              "matryoshka_dims": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
                                  "description": "The dimensions, e.g. [384, 256, 128, 64]."},
              "matryoshka_weights": {"type": ["array", "null"], "items": {"type": "number"}, "minItems": 1,
                                     "description": "One weight per dimension (default 1 each)."}}

    def __init__(self, loss: Any, matryoshka_dims: list[int], matryoshka_weights: list[float] | None = None) -> None:
        super().__init__()
        if matryoshka_weights is not None and len(matryoshka_weights) != len(matryoshka_dims):
            from stpipe.errors import config_error

            raise config_error("loss.matryoshka", ("loss", "matryoshka_weights"), "matryoshka_weights needs one "
                               f"weight per dimension ({len(matryoshka_dims)})")
        self.loss = loss
        self.matryoshka_dims = list(matryoshka_dims)
        self.matryoshka_weights = list(matryoshka_weights or [1.0] * len(matryoshka_dims))
        self.min_inputs, self.max_inputs, self.needs_label = loss.min_inputs, loss.max_inputs, loss.needs_label

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        total = embeddings[0].new_zeros(())
        for dim, weight in zip(self.matryoshka_dims, self.matryoshka_weights):
            total = total + weight * self.loss.compute([e[..., :dim] for e in embeddings], labels)
        return total
