"""``Normalize``: L2-normalise one feature along its last dimension (the seed's ``Normalize``).

``f[out] = x / max(||x||₂, 1e-12)``; nothing happens when the input feature is absent. Saved as
``config.json`` (``module_input_name``, ``module_output_name``; new in sentence-transformers 6.x). Older
checkpoints have no folder at all (all-MiniLM-L6-v2's ``2_Normalize``): a missing file means defaults.

>>> import torch
>>> Normalize()({"sentence_embedding": torch.tensor([[3.0, 4.0]])})["sentence_embedding"].tolist()
[[0.6000000238418579, 0.800000011920929]]
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from stpipe.contracts.normalize import NORMALIZE
from stpipe.modules.module import ConfigModule


class Normalize(ConfigModule):
    """Unit-length embeddings (for cosine similarity as a dot product)."""

    contract = NORMALIZE
    config_keys = list(NORMALIZE.config_keys)
    describe = staticmethod(NORMALIZE.describe)  # one static description, shared with validation

    def __init__(self, module_input_name: str = "sentence_embedding", module_output_name: str | None = None) -> None:
        super().__init__()
        if not isinstance(module_input_name, str) or not module_input_name:
            raise ValueError(f"module_input_name must be a non-empty string, got {module_input_name!r}")
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name or module_input_name

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if self.module_input_name in features:
            x = features[self.module_input_name]  # half precision: the norm in float32, the result in x's dtype
            features[self.module_output_name] = (F.normalize(x.float(), p=2, dim=-1).to(x.dtype)
                                                 if x.dtype in (torch.float16, torch.bfloat16)
                                                 else F.normalize(x, p=2, dim=-1))
        return features
