"""The base of stpipe's losses: a torch module that turns per-column embeddings (and labels) into a scalar."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class Loss(nn.Module):
    """``compute(embeddings, labels)``: ``embeddings`` holds one ``(batch, dim)`` tensor per text column, in the
    data's column order; ``labels`` the score column (or None). Class attributes declare the columns it needs."""

    schema: ClassVar[dict[str, Any]] = {}
    min_inputs: ClassVar[int] = 2
    max_inputs: ClassVar[int | None] = 2
    needs_label: ClassVar[bool] = False
    input_names: ClassVar[tuple[str, ...]] = ("sentence1", "sentence2")

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, embeddings: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.compute(embeddings, labels)

    def config(self) -> dict[str, Any]:
        """The parameters (for the resolved training config)."""
        return {k: getattr(self, k) for k in self.schema}


def cosine_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each row pair (a[i], b[i])."""
    return torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-8)


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """All cosine similarities (len(a), len(b))."""
    f = torch.nn.functional.normalize
    return f(a, p=2, dim=1) @ f(b, p=2, dim=1).T
