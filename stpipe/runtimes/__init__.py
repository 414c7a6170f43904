"""Graph runtimes beside torch: ONNX Runtime and OpenVINO (the optional extras ``stpipe[onnx]``, ``stpipe[openvino]``).

* :mod:`stpipe.runtimes.sessions` — one :class:`~stpipe.runtimes.sessions.Session` interface over an
  ``onnxruntime.InferenceSession`` or a compiled OpenVINO model (numpy in, numpy out; ``threads``);
* :mod:`stpipe.runtimes.graph_export` — ``torch.onnx.export`` of a Hugging Face model alone (``Transformer(backend=…,
  model_kwargs={export: true})``) or of a whole route (Transformer → Pooling → Dense → Normalize), dynamic int8
  quantisation, conversion to OpenVINO IR;
The modules that run on them live with the other modules (this package is below ``modules/``):
:mod:`stpipe.modules.backend_model` (what ``Transformer(backend="onnx" | "openvino")`` holds instead of a torch
model) and :mod:`stpipe.modules.graph_encoder` (``GraphEncoder``, one route of an export); a Pipeline → an
exported directory is :mod:`stpipe.exports`, read back by :mod:`stpipe.formats.exported`.

Nothing here imports onnx, onnxruntime or openvino at import time: :func:`require` does, when a graph is used, and
names the extra to install when the package is missing.
"""

from __future__ import annotations

import importlib
from typing import Any

from stpipe.contracts.pipeline import EXPORT_FORMATS
from stpipe.errors import LoadError

#: the formats stpipe exports to and runs; each is an optional extra of the same name
FORMATS = EXPORT_FORMATS
#: import name → (extra, pip package)
_PACKAGES = {"onnx": ("onnx", "onnx"), "onnxruntime": ("onnx", "onnxruntime"), "openvino": ("openvino", "openvino")}


def require(module: str) -> Any:
    """Import ``module`` (onnx, onnxruntime, openvino) or raise a LoadError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra, package = _PACKAGES[module]
        raise LoadError(f"the {extra!r} backend needs the package {package!r}, which is not installed ({exc})",
                        hint=f"pip install 'stpipe[{extra}]'") from None


def default_threads(threads: int | None) -> int:
    """The intra-op thread count a runtime session gets: ``threads`` if given (≥ 1), else torch's own."""
    if threads is None:
        import torch

        return torch.get_num_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    return threads
