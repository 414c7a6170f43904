"""One small interface over the graph runtimes: :func:`open_session` → a :class:`Session` (numpy in, numpy out).

* ONNX Runtime: ``InferenceSession(path, providers=[provider], sess_options)`` with ``intra_op_num_threads`` =
  ``threads`` (default: torch's thread count) and one inter-op thread; the provider defaults to the first one
  ``onnxruntime.get_available_providers()`` lists, as in sentence-transformers.
* OpenVINO: ``Core().compile_model(xml, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
  "INFERENCE_PRECISION_HINT": "f32"})`` updated by ``ov_config`` (a dict).

Only the file the caller named is opened; the path is checked to exist first (a LoadError naming it otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stpipe.errors import LoadError
from stpipe.runtimes import FORMATS, default_threads, require


class Session:
    """A loaded graph: ``input_names``, ``output_names`` and ``run(feeds) -> {output name: array}``."""

    input_names: list[str]
    output_names: list[str]
    path: Path

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError


class OrtSession(Session):
    def __init__(self, path: Path, *, provider: str | None = None, threads: int | None = None) -> None:
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = default_threads(threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        provider = provider or available[0]
        if provider not in available:
            raise LoadError(f"ONNX Runtime execution provider {provider!r} is not available here",
                            hint=f"available: {', '.join(available)} (model_kwargs.provider)")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=[provider])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise LoadError(f"ONNX Runtime cannot load this graph: {exc}", path=str(path),
                            hint="the file is truncated or not an ONNX model; export it again") from None
        self.path = path
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(None, {k: feeds[k] for k in self.input_names})
        return dict(zip(self.output_names, outputs, strict=True))


class OpenVinoSession(Session):
    def __init__(self, path: Path, *, threads: int | None = None, ov_config: Mapping[str, Any] | None = None) -> None:
        ov = require("openvino")
        # f32: on a CPU with bf16 units (AVX512-BF16, AMX) OpenVINO would otherwise run an fp32 graph in bf16
        # (embeddings ~1e-3 off); ov_config {"INFERENCE_PRECISION_HINT": "bf16"} asks for that explicitly
        config = {"INFERENCE_NUM_THREADS": default_threads(threads), "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "f32", **{k: v for k, v in (ov_config or {}).items()}}
        try:
            model = ov.Core().read_model(str(path))
            self._compiled = ov.Core().compile_model(model, "CPU", config)
        except Exception as exc:  # openvino raises RuntimeError for bad files
            raise LoadError(f"OpenVINO cannot load this graph: {exc}", path=str(path),
                            hint="the .xml or its .bin is truncated or missing; export it again") from None
        self.path = path
        self.input_names = [_port_name(i) for i in self._compiled.inputs]
        self.output_names = [_port_name(o) for o in self._compiled.outputs]
        self._request = self._compiled.create_infer_request()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self._request.infer({k: feeds[k] for k in self.input_names})
        return {name: np.asarray(result[out]) for name, out in zip(self.output_names, self._compiled.outputs,
                                                                     strict=True)}


#: the tensor names stpipe feeds and reads; an OpenVINO port may carry several names (aliases), in no fixed order
_KNOWN_NAMES = ("input_ids", "attention_mask", "token_type_ids", "sentence_embedding", "last_hidden_state")


def _port_name(port: Any) -> str:
    names = port.get_names()
    return next((n for n in _KNOWN_NAMES if n in names), None) or port.get_any_name()


def open_session(fmt: str, path: str | Path, *, provider: str | None = None, threads: int | None = None,
                 ov_config: Mapping[str, Any] | None = None) -> Session:
    """The graph at ``path`` (``.onnx`` for onnx, ``.xml`` for openvino) loaded by its runtime."""
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown graph format {fmt!r}; valid: {', '.join(FORMATS)}")
    if not path.is_file():
        raise LoadError(f"the {fmt} graph file is missing", path=str(path))
    if fmt == "onnx":
        return OrtSession(path, provider=provider, threads=threads)
    if provider is not None:
        raise ValueError("model_kwargs.provider is an ONNX Runtime setting; OpenVINO takes ov_config")
    return OpenVinoSession(path, threads=threads, ov_config=ov_config)
