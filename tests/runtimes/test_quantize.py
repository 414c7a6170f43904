"""Faster exports (stpipe.runtimes.quantize): static int8 with calibration, ONNX Runtime's graph fusions.

Tolerances: an optimize=O1/O2 graph computes the same arithmetic reordered, so its embeddings stay within 1e-4 of
the torch fp32 pipeline; O3 replaces GELU by its tanh approximation (within 1e-2 here). A static int8 graph of the
tiny random BERT (hidden size 32, which quantises worse than real models — all-MiniLM-L6-v2 keeps STS-B dev
Spearman 0.8666 vs 0.8672 fp32, docs/performance.md) keeps the cosine to fp32 ≥ 0.95 on average, ≥ 0.85 each.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import stpipe
from stpipe.errors import LoadError
from stpipe.formats.exported import MANIFEST, export
from stpipe.runtimes import quantize as q

TEXTS = ["hello world", "a somewhat longer sentence about cats and dogs", "x", "where is the station?",
         "the quick brown fox jumps over the lazy dog", "cats"]
CALIBRATION = ["a cat sat on the mat", "dogs and cats are friends", "hello", "the station is near the park",
               "where do the dogs play?", "a quick fox", "the world is round", "x y z"] * 4


@pytest.fixture(scope="module")
def torch_pipe(tiny_bert_dir):
    torch.manual_seed(0)
    return stpipe.build({"name": "tiny", "modules": [
        {"type": "Transformer", "model_name_or_path": str(tiny_bert_dir), "max_seq_length": 16},
        {"type": "Pooling", "pooling_mode": "mean"}, {"type": "Normalize"}]}, device="cpu")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("level, atol", [("O1", 1e-4), ("O2", 1e-4), ("O3", 1e-2)])
def test_optimize_levels_keep_the_embeddings(torch_pipe, tmp_path, level, atol):
    out = export(torch_pipe, tmp_path / level, "onnx", optimize=level)
    assert json.loads((out / MANIFEST).read_text())["optimize"] == level
    np.testing.assert_allclose(stpipe.load(out).encode(TEXTS, batch_size=4), torch_pipe.encode(TEXTS), atol=atol)


def test_o2_fuses_the_transformer(torch_pipe, tmp_path):
    """O2 is not O1 renamed: the saved graph holds ONNX Runtime's fused operators."""
    import onnx

    graph = onnx.load(str(export(torch_pipe, tmp_path / "o2", "onnx", optimize="O2") / "model.onnx"))
    ops = {n.op_type for n in graph.graph.node}
    assert {"SkipLayerNormalization", "Attention"} & ops, sorted(ops)


def test_static_int8_loads_and_stays_close_to_fp32(torch_pipe, tmp_path):
    out = export(torch_pipe, tmp_path / "s8", "onnx", quantize="int8-static", calibration=CALIBRATION)
    loaded = stpipe.load(out)
    assert loaded[0].precision == "int8-static"
    import onnx

    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ: activations and weights quantised
    c = cosines(loaded.encode(TEXTS), torch_pipe.encode(TEXTS))
    assert c.mean() >= 0.95 and c.min() >= 0.85, c


@pytest.mark.slow
def test_openvino_static_int8_through_nncf(torch_pipe, tmp_path):
    out = export(torch_pipe, tmp_path / "ov8", "openvino", quantize="int8-static", calibration=CALIBRATION)
    c = cosines(stpipe.load(out).encode(TEXTS), torch_pipe.encode(TEXTS))
    assert c.mean() >= 0.95 and c.min() >= 0.85, c


def test_calibration_feeds_are_the_graph_inputs(torch_pipe):
    feeds = q.calibration_feeds(torch_pipe[0].tokenizer, CALIBRATION[:5], ["input_ids", "attention_mask",
                                                                            "token_type_ids"], 16, batch=2)
    assert [len(f["input_ids"]) for f in feeds] == [2, 2, 1]
    assert all(v.dtype == np.int64 for f in feeds for v in f.values())
    assert not feeds[0]["token_type_ids"].any()


def test_no_calibration_texts_is_a_clear_error(torch_pipe):
    with pytest.raises(LoadError, match="calibration"):
        q.calibration_feeds(torch_pipe[0].tokenizer, [], ["input_ids"])


def test_bad_levels_are_refused(torch_pipe, tmp_path):
    with pytest.raises(ValueError, match="optimize must be one of O1, O2, O3"):
        export(torch_pipe, tmp_path / "x", "onnx", optimize="O9")
    with pytest.raises(ValueError, match="format=onnx"):
        export(torch_pipe, tmp_path / "y", "openvino", optimize="O2")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
