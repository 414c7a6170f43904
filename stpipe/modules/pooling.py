"""``Pooling``: token embeddings (B, T, D) → one sentence embedding (B, n_modes·D).

Modes: ``cls``, ``max``, ``mean``, ``mean_sqrt_len_tokens``, ``weightedmean``, ``lasttoken``; a list of modes
is concatenated in the given order (and saved as a JSON list). stpipe makes ``embedding_dimension``
optional: when None it is filled by :meth:`bind_upstream` (the builder passes the Transformer's dimension)
or on the first forward pass.

Masking follows sentence-transformers 6.2: positions with ``attention_mask == 0`` are ignored (a mask of a
different width than the tokens is replaced by ones); with ``include_prompt=False`` the first
``prompt_length`` real tokens are ignored too (after any left padding). ``weightedmean`` weights count
1, 2, 3, … from the first real token. Half-precision sums accumulate in float32.

The deprecated boolean flags (``pooling_mode_cls_token=True`` …) are accepted with a FutureWarning and turned
into ``pooling_mode`` as sentence-transformers 6.2 does (their modes concatenated in the legacy order; none set:
``mean``; a ``pooling_mode`` other than the default wins). Modes, flags and the static description live in
:mod:`stpipe.contracts.pooling`.

>>> import torch
>>> x = torch.arange(24.0).view(2, 3, 4)
>>> mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
>>> Pooling(4, "mean")({"token_embeddings": x, "attention_mask": mask})["sentence_embedding"].tolist()
[[2.0, 3.0, 4.0, 5.0], [18.0, 19.0, 20.0, 21.0]]
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from stpipe.contracts.pooling import (  # noqa: F401 - re-exported
    LEGACY_MODE_KEYS,
    POOLING,
    POOLING_MODES,
    check_pooling_mode,
    legacy_pooling_mode,
    legacy_warning,
)
from stpipe.modules.module import Module

logger = logging.getLogger(__name__)

class Pooling(Module):
    """Pool token embeddings into a fixed-size sentence embedding."""

    contract = POOLING
    config_keys = list(POOLING.config_keys)
    config_key_renames = dict(POOLING.config_key_renames)
    POOLING_MODES = POOLING_MODES
    describe = staticmethod(POOLING.describe)  # one static description, shared with validation

    def __init__(self, embedding_dimension: int | None = None, pooling_mode: str | Sequence[str] = "mean",
                 include_prompt: bool = True, **legacy: bool) -> None:
        """``**legacy``: the deprecated ``pooling_mode_*_tokens`` flags, accepted with a FutureWarning and turned
        into ``pooling_mode`` as in sentence-transformers 6.2 (an explicit ``pooling_mode`` wins)."""
        super().__init__()
        unknown = [k for k in legacy if k not in LEGACY_MODE_KEYS]
        if unknown:
            raise TypeError(f"Pooling.__init__() got an unexpected keyword argument {unknown[0]!r}")
        if legacy:
            warnings.warn(legacy_warning(list(legacy)), FutureWarning, stacklevel=2)
            if pooling_mode == "mean":  # the default: the flags decide
                pooling_mode = legacy_pooling_mode(dict(legacy)) or "mean"
        if embedding_dimension is not None and (isinstance(embedding_dimension, bool)
                                                or not isinstance(embedding_dimension, int)
                                                or embedding_dimension <= 0):
            raise ValueError(f"embedding_dimension must be a positive integer or None, got {embedding_dimension!r}")
        if not isinstance(include_prompt, bool):
            raise ValueError(f"include_prompt must be true or false, got {include_prompt!r}")
        self.embedding_dimension = embedding_dimension
        self.pooling_mode = check_pooling_mode(pooling_mode)
        self.include_prompt = include_prompt

    @property
    def modes(self) -> tuple[str, ...]:
        return (self.pooling_mode,) if isinstance(self.pooling_mode, str) else self.pooling_mode

    @property
    def pooling_output_dimension(self) -> int | None:
        return None if self.embedding_dimension is None else len(self.modes) * self.embedding_dimension

    def get_embedding_dimension(self) -> int | None:
        return self.pooling_output_dimension

    def bind_upstream(self, dim: int | None) -> None:
        if self.embedding_dimension is None and dim is not None:
            self.embedding_dimension = int(dim)

    def get_config_dict(self) -> dict[str, Any]:
        mode = self.pooling_mode if isinstance(self.pooling_mode, str) else list(self.pooling_mode)
        return {"embedding_dimension": self.embedding_dimension, "pooling_mode": mode,
                "include_prompt": self.include_prompt}

    # ----------------------------------------------------------------- forward
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "token_embeddings" not in features:
            raise KeyError(f"Pooling expects the feature 'token_embeddings'; available features: {sorted(features)}")
        x = features["token_embeddings"]
        if "cu_seq_lens_q" in features:  # flattened (unpadded) batch: pool each segment
            x, mask = _unflatten(x, features["cu_seq_lens_q"])
        else:
            mask = features.get("attention_mask")
            if mask is None or mask.dim() != 2 or mask.shape[1] != x.shape[1]:
                mask = torch.ones(x.shape[:2], device=x.device, dtype=torch.long)
        if self.embedding_dimension is None:
            self.embedding_dimension = int(x.shape[-1])
        mask = mask.to(x.device)
        start = mask.gt(0).int().argmax(dim=1)  # leading padding length per row (0 when right-padded)
        positions = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
        keep = mask.gt(0)
        prompt_length = features.get("prompt_length")
        if not self.include_prompt and prompt_length is not None:
            p = torch.as_tensor(prompt_length, device=x.device).reshape(-1)
            p = p[:1] if p.numel() != x.shape[0] else p
            keep = keep & (positions >= (start + p).unsqueeze(1))
        acc = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        m = keep.to(acc).unsqueeze(-1)
        xs = x.to(acc)
        outs = [self._pool(mode, x, xs, m, keep, start, positions, features) for mode in self.modes]
        features["sentence_embedding"] = torch.cat(outs, dim=1)
        return features

    @staticmethod
    def _pool(mode: str, x: torch.Tensor, xs: torch.Tensor, m: torch.Tensor, keep: torch.Tensor,
              start: torch.Tensor, positions: torch.Tensor, features: Mapping[str, Any]) -> torch.Tensor:
        rows = torch.arange(x.shape[0], device=x.device)
        if mode == "cls":
            if "cls_token_embeddings" in features:
                return features["cls_token_embeddings"]
            return x[rows, keep.int().argmax(dim=1)]
        if mode == "max":
            return x.masked_fill(~keep.unsqueeze(-1), float("-inf")).max(dim=1).values
        if mode == "lasttoken":
            last = x.shape[1] - 1 - keep.flip(1).int().argmax(dim=1)
            return (xs[rows, last] * m[rows, last]).to(x.dtype)
        tws = features.get("token_weights_sum")  # a given denominator (e.g. from a weighting module)
        tws = None if tws is None else (tws.unsqueeze(-1) if tws.dim() == 1 else tws).to(xs.dtype)
        if mode == "weightedmean":
            w = (positions + 1 - start.unsqueeze(1)).to(xs.dtype).unsqueeze(-1) * m
            count = w.sum(1).clamp(min=1e-9) if tws is None else tws
            return ((xs * w).sum(1) / count).to(x.dtype)
        total = (xs * m).sum(1)
        count = m.sum(1).clamp(min=1e-9) if tws is None else tws
        if mode == "mean":
            return (total / count).to(x.dtype)
        return (total / count.sqrt()).to(x.dtype)  # mean_sqrt_len_tokens

    # ----------------------------------------------------------------- files
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)

    @classmethod
    def load_config(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The saved config with legacy keys (``pooling_mode_*_tokens`` booleans) turned into ``pooling_mode``."""
        config = POOLING.saved_config(super().load_config(*args, **kwargs))
        for key in [k for k in config if k not in cls.config_keys]:
            logger.warning("Pooling: ignoring unknown config key %r", key)
            config.pop(key)
        return config


def _unflatten(x: torch.Tensor, cu_seq_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, N, D) packed segments → right-padded (S, L, D) plus its mask."""
    flat = x.reshape(-1, x.shape[-1])
    bounds = cu_seq_lens.tolist()
    lengths = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    out = flat.new_zeros(len(lengths), max(lengths, default=0), flat.shape[-1])
    mask = torch.zeros(out.shape[:2], dtype=torch.long, device=x.device)
    for i, (a, n) in enumerate(zip(bounds[:-1], lengths)):
        out[i, :n] = flat[a:a + n]
        mask[i, :n] = 1
    return out, mask
