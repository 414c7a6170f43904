"""stpipe.experiments.throughput: the evaluation's own encode calls recorded and replayed; the size of what runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import stpipe
from stpipe.experiments import throughput


@pytest.fixture(scope="module")
def pipe(tiny_bert_dir):
    return stpipe.build({"name": "t", "modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                                                 {"type": "Pooling"}]}, device="cpu")


def test_recording_notes_every_encode_call_and_restores_the_method(pipe):
    with throughput.recording(pipe) as calls:
        first = pipe.encode(["a cat", "dogs"], batch_size=1)
        pipe.encode_query("where?")
    assert [c[0] for c in calls] == [["a cat", "dogs"], "where?"]
    assert calls[0][2] == {"batch_size": 1} and calls[1][2]["task"] == "query"
    assert "encode" not in vars(pipe)  # the class's method again
    np.testing.assert_allclose(first, pipe.encode(["a cat", "dogs"]), atol=1e-6)


def test_measure_counts_the_texts_of_the_replayed_calls(pipe, monkeypatch):
    seen = []
    real = pipe.encode
    monkeypatch.setattr(pipe, "encode", lambda inputs, *a, **kw: (seen.append(kw), real(inputs, *a, **kw))[1])
    result = throughput.measure(pipe, [(["a", "b", "c"], (), {"batch_size": 1}), ("d", (), {})], batch_size=2,
                                max_batch_tokens=64, rounds=2, enough=1e9)
    assert result is not None and result["throughput"] > 0
    assert result["throughput"] == pytest.approx(4 / result["encode_seconds"], rel=0.02)
    assert len(seen) == 4  # two rounds of the two calls
    assert [kw["batch_size"] for kw in seen] == [2, 2, 2, 2] and all(kw["max_batch_tokens"] == 64 for kw in seen)
    assert throughput.measure(pipe, []) is None


def test_model_size_is_the_weights_or_the_graph_files(pipe, tmp_path):
    n_bytes = sum(t.numel() * t.element_size() for t in [*pipe.parameters(), *pipe.buffers()])
    assert throughput.model_size_mb(pipe) == round(n_bytes / 1e6, 3)
    from stpipe.formats.exported import export

    out = export(pipe, tmp_path / "g", "onnx")
    assert throughput.model_size_mb(stpipe.load(out)) == round((out / "model.onnx").stat().st_size / 1e6, 3)
    assert torch.is_tensor(next(pipe.parameters()))
