"""Writing graphs: ``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``), dynamic int8 quantisation,
and conversion of an ONNX graph to OpenVINO IR.

* :func:`export_hf_model` — a Hugging Face model alone (what ``Transformer(backend="onnx", model_kwargs={export:
  true})`` runs): inputs ``input_ids``, ``attention_mask`` [, ``token_type_ids``] → ``last_hidden_state``.
* :func:`export_route` — a whole list of modules (Transformer → Pooling → Dense → Normalize): the same inputs →
  ``sentence_embedding`` (and ``token_embeddings``), one graph.
* :func:`quantize_int8` — ONNX Runtime's ``quantize_dynamic`` (QInt8 weights of MatMul/Gemm per output channel,
  activations quantised per batch at run time).
* :func:`onnx_to_openvino` — ``openvino.convert_model`` + ``save_model`` (weights kept in fp32; an int8 ONNX graph
  keeps its quantised MatMuls).

Batch and sequence axes are dynamic. Every graph is written into a directory the caller chose.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stpipe.errors import LoadError
from stpipe.runtimes import require

logger = logging.getLogger("stpipe")

OPSET = 17
#: the tokenizer outputs a text graph takes, in this order (those the tokenizer produces)
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def text_input_names(tokenizer: Any) -> list[str]:
    """The graph inputs for this tokenizer: input_ids, attention_mask and, if it makes them, token_type_ids."""
    made = list(getattr(tokenizer, "model_input_names", None) or ["input_ids", "attention_mask"])
    return [n for n in TEXT_INPUTS if n in made or n != "token_type_ids"]


def example_inputs(tokenizer: Any, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """A two-text batch of different lengths (so the padding path is traced), as int64 tensors."""
    batch = tokenizer(["a tiny example sentence to trace the graph", "short"], padding=True,
                      truncation=True, return_tensors="pt")
    out = {n: batch[n].to(torch.int64) for n in names if n in batch}
    if "token_type_ids" in names and "token_type_ids" not in out:
        out["token_type_ids"] = torch.zeros_like(out["input_ids"])
    return out


class _HFGraph(nn.Module):
    """A Hugging Face model as a function of positional token tensors → ``last_hidden_state``."""

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors, strict=True)), return_dict=True).last_hidden_state


class _RouteGraph(nn.Module):
    """A route (a list of stpipe modules, the first a Transformer) as a function of token tensors."""

    def __init__(self, modules: Sequence[nn.Module], names: Sequence[str], outputs: Sequence[str]) -> None:
        super().__init__()
        self.route = nn.ModuleList(modules)
        self.names, self.outputs = list(names), list(outputs)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features: dict[str, Any] = dict(zip(self.names, tensors, strict=True))
        features["modality"] = "text"
        for module in self.route:
            features = module(features)
        return tuple(features[o] for o in self.outputs)


@contextlib.contextmanager
def _eager_attention(model: nn.Module) -> Iterator[None]:
    """Trace with eager attention: SDPA's mask helpers take data-dependent branches the tracer would freeze."""
    configs = [m.config for m in model.modules() if hasattr(getattr(m, "config", None), "_attn_implementation")]
    old = [c._attn_implementation for c in configs]
    try:
        for c in configs:
            c._attn_implementation = "eager"
        yield
    finally:
        for c, o in zip(configs, old, strict=True):
            c._attn_implementation = o


def _export(graph: nn.Module, example: dict[str, torch.Tensor], outputs: Sequence[str], token_outputs: set[str],
            path: Path) -> None:
    require("onnx")  # torch.onnx.export writes through the onnx package
    names = list(example)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
    axes.update({o: ({0: "batch", 1: "sequence"} if o in token_outputs else {0: "batch"}) for o in outputs})
    graph.eval()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings(), _eager_attention(graph):
        warnings.simplefilter("ignore")  # the tracer's TracerWarnings about Python values it records as constants
        torch.onnx.export(graph, tuple(example.values()), str(path), input_names=names, output_names=list(outputs),
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)


def export_hf_model(model: nn.Module, tokenizer: Any, path: Path) -> Path:
    """``path`` (a ``.onnx`` file): the Hugging Face ``model`` alone, inputs → ``last_hidden_state``."""
    names = text_input_names(tokenizer)
    example = example_inputs(tokenizer, names)
    _export(_HFGraph(model, list(example)), example, ["last_hidden_state"], {"last_hidden_state"}, path)
    return path


def export_route(modules: Sequence[nn.Module], path: Path) -> list[str]:
    """``path`` (a ``.onnx`` file): one graph of ``modules`` (the first a text Transformer) → sentence_embedding.
    Returns the graph's input names."""
    first = modules[0]
    tokenizer = getattr(first, "tokenizer", None)
    if tokenizer is None or not callable(tokenizer):
        raise LoadError(f"cannot export a route that starts with {type(first).__name__}: the graph export needs a "
                        "Transformer with a tokenizer as its first module")
    example = example_inputs(tokenizer, text_input_names(tokenizer))
    with torch.no_grad():
        probe = _RouteGraph(modules, list(example), [])
        features: dict[str, Any] = {**example, "modality": "text"}
        for m in probe.route:
            features = m(features)
    if "sentence_embedding" not in features:
        raise LoadError("the route produces no sentence_embedding; only dense embedding models are exported "
                        "(Transformer → Pooling → Dense → Normalize)")
    _export(_RouteGraph(modules, list(example), ["sentence_embedding"]), example, ["sentence_embedding"], set(), path)
    return list(example)


def quantize_int8(src: Path, dst: Path) -> Path:
    """``dst``: ``src`` with dynamically quantised QInt8 MatMul/Gemm weights (ONNX Runtime's quantize_dynamic)."""
    require("onnx")
    require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()  # quantize_dynamic logs advice on the root logger ("consider pre-processing")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:  # per output channel: all-MiniLM-L6-v2's STS-B dev cosine to fp32 0.993 (per tensor: 0.94)
        # an optimize=O2/O3 graph holds ONNX Runtime's own operators, which onnx's shape inference cannot type:
        # their outputs are float; its fused Attention is quantised too (QAttention)
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm", "Attention"],
                         extra_options={"DefaultTensorType": 1})  # onnx.TensorProto.FLOAT
    finally:
        quiet.setLevel(level)
    return dst


def onnx_to_openvino(src: Path, xml: Path) -> Path:
    """``xml`` (and its ``.bin``): the ONNX graph ``src`` as OpenVINO IR, weights as they are (no fp16 compression)."""
    ov = require("openvino")
    model = ov.convert_model(str(src))
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml
