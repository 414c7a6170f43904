"""Making an exported graph faster: ONNX Runtime's transformer fusions (``optimize=``) and int8 quantisation
(``quantize=int8`` dynamic, ``quantize=int8-static`` calibrated), for ONNX Runtime and OpenVINO.

* :func:`optimize_onnx` — ``optimize=O1`` ONNX Runtime's basic graph rewrites (constant folding, redundant nodes)
  saved offline; ``O2`` adds the transformer fusions of ``onnxruntime.transformers.optimizer`` (multi-head
  attention, LayerNormalization / SkipLayerNormalization, GELU with its bias, the embedding layer norm) — the same
  arithmetic, reordered; ``O3`` adds the tanh approximation of GELU (FastGelu: faster, no longer exact).
* :func:`quantize_static_onnx` — ONNX Runtime's ``quantize_static`` in QDQ format: int8 weights per output channel
  (symmetric), uint8 activations per tensor from MinMax calibration, on the MatMuls with a constant weight (the
  Linear layers; attention's activation × activation MatMuls, LayerNorm, Softmax and the pooling stay fp32).
* :func:`quantize_static_openvino` — NNCF's post-training quantisation of the OpenVINO model (``ModelType.
  TRANSFORMER``, the mixed preset), calibrated on the same inputs; ``nncf`` is part of the ``openvino`` extra.
* :func:`calibration_feeds` — the calibration texts tokenised as the graph's inputs, batch by batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stpipe.contracts.pipeline import EXPORT_OPTIMIZE, EXPORT_QUANTIZE
from stpipe.errors import LoadError
from stpipe.runtimes import require

logger = logging.getLogger("stpipe")

#: ``quantize=`` values and ``optimize=`` levels: the vocabulary lives in the contracts (one home)
QUANTIZE = EXPORT_QUANTIZE
OPTIMIZE = EXPORT_OPTIMIZE
#: how many calibration texts are used when the caller does not say
DEFAULT_SAMPLES = 300
#: texts per calibration batch (each padded to its longest text)
CALIBRATION_BATCH = 16


def calibration_feeds(tokenizer: Any, texts: Sequence[str], inputs: Sequence[str], max_length: int | None = None,
                      batch: int = CALIBRATION_BATCH) -> list[dict[str, np.ndarray]]:
    """``texts`` tokenised as the graph's ``inputs`` (int64), in batches of ``batch`` (NNCF: 1 — OpenVINO's CPU
    plugin fails on its statistics model when batches of different shapes follow each other)."""
    if not texts:
        raise LoadError("quantize=int8-static needs calibration texts; none were given",
                        hint="calibration=DATA (a data set of conf/data) or calibration=FILE (one text a line)")
    call: dict[str, Any] = {"padding": True, "truncation": True, "return_tensors": "np"}
    if max_length:
        call["max_length"] = max_length
    feeds = []
    for start in range(0, len(texts), batch):
        tokens = tokenizer(list(texts[start:start + batch]), **call)
        ids = tokens["input_ids"].astype(np.int64)
        feeds.append({n: (tokens[n].astype(np.int64) if n in tokens else np.zeros_like(ids)) for n in inputs})
    return feeds


def _quiet() -> Any:
    """ORT's quantiser logs advice on the root logger; silence it for the call."""
    root = logging.getLogger()

    class _Restore:
        def __enter__(self) -> None:
            self.level = root.level
            root.setLevel(logging.ERROR)

        def __exit__(self, *exc: object) -> None:
            root.setLevel(self.level)

    return _Restore()


def optimize_onnx(src: Path, dst: Path, level: str) -> Path:
    """``dst``: ``src`` optimised at ``level`` (see the module docstring)."""
    if level not in OPTIMIZE:
        raise ValueError(f"optimize must be one of {', '.join(OPTIMIZE)}, got {level!r}")
    require("onnx")
    ort = require("onnxruntime")
    if level == "O1":
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(dst)
        ort.InferenceSession(str(src), sess_options=options, providers=["CPUExecutionProvider"])
        return dst
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    fusion = FusionOptions("bert")
    fusion.enable_gelu_approximation = level == "O3"
    with _quiet():
        model = optimize_model(str(src), model_type="bert", num_heads=0, hidden_size=0,
                               optimization_options=fusion, opt_level=0)
    counts = model.get_fused_operator_statistics()
    logger.info("optimize=%s fused: %s", level, {k: v for k, v in counts.items() if v})
    model.save_model_to_file(str(dst))
    return dst


class _Reader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over prepared feeds."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self._it

    def __next__(self) -> dict[str, np.ndarray]:
        return next(self._it)

    def set_range(self, start_index: int, end_index: int) -> None:  # pragma: no cover - ORT's batched calibration
        raise NotImplementedError


def quantize_static_onnx(src: Path, dst: Path, feeds: Sequence[dict[str, np.ndarray]]) -> Path:
    """``dst``: ``src`` with statically quantised (QDQ) MatMul weights and inputs, calibrated on ``feeds``."""
    require("onnx")
    require("onnxruntime")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    reader = type("_StpipeReader", (_Reader, CalibrationDataReader), {})(feeds)
    with _quiet():
        quantize_static(str(src), str(dst), reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"MatMulConstBOnly": True, "WeightSymmetric": True,
                                       "ActivationSymmetric": False, "DefaultTensorType": 1})  # FLOAT
    return dst


def require_nncf() -> Any:
    """``nncf`` or a LoadError naming the extra (``stpipe[openvino]`` installs it)."""
    try:
        import nncf
    except ImportError as exc:
        raise LoadError(f"quantize=int8-static with format=openvino needs the package 'nncf', which is not "
                        f"installed ({exc})", hint="pip install 'stpipe[openvino]'") from None
    return nncf


def quantize_static_openvino(src: Path, xml: Path, feeds: Sequence[dict[str, np.ndarray]]) -> Path:
    """``xml`` (and its ``.bin``): the fp32 ONNX graph ``src`` converted to OpenVINO and quantised by NNCF."""
    ov = require("openvino")
    nncf = require_nncf()
    from stpipe.runtimes.sessions import _port_name

    model = ov.convert_model(str(src))
    names = [_port_name(p) for p in model.inputs]  # a port may carry several names; feed it by the one stpipe makes

    def transform(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [feed[n] for n in names]

    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)
    try:
        quantized = nncf.quantize(model, nncf.Dataset(list(feeds), transform),
                                  model_type=nncf.ModelType.TRANSFORMER, preset=nncf.QuantizationPreset.MIXED,
                                  subset_size=len(feeds))
    finally:
        nncf_logger.setLevel(level)
    ov.save_model(quantized, str(xml), compress_to_fp16=False)
    return xml
