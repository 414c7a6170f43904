"""``Transformer(backend="onnx" | "openvino")``: the seed's model_kwargs (file_name, export, provider) and the
sentence-transformers 6.2 layout (onnx/model.onnx, openvino/openvino_model.xml); parity with torch ≤ 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import stpipe
from stpipe.errors import LoadError

TEXTS = ["hello world", "a somewhat longer sentence about cats and dogs", "x"]


def build(model_dir, **transformer):
    return stpipe.build({"modules": [{"type": "Transformer", "model_name_or_path": str(model_dir), **transformer},
                                     {"type": "Pooling"}]}, device="cpu")


@pytest.fixture(scope="module")
def reference(tiny_bert_dir):
    return build(tiny_bert_dir).encode(TEXTS)


@pytest.fixture(scope="module")
def onnx_saved(tiny_bert_dir, tmp_path_factory):
    pipe = build(tiny_bert_dir, backend="onnx", model_kwargs={"export": True, "threads": 1})
    out = tmp_path_factory.mktemp("saved") / "m"
    pipe.save(out)
    return pipe, out


def test_onnx_backend_matches_torch(onnx_saved, reference):
    pipe, _ = onnx_saved
    assert pipe[0].backend == "onnx" and type(pipe[0].model).__name__ == "GraphModel"
    np.testing.assert_allclose(pipe.encode(TEXTS), reference, atol=1e-4)
    assert pipe[0].model.session._session.get_session_options().intra_op_num_threads == 1


def test_saved_in_the_onnx_subfolder_and_loaded_back(onnx_saved, reference):
    _, out = onnx_saved
    assert (out / "onnx" / "model.onnx").is_file() and (out / "config.json").is_file()
    loaded = stpipe.load(out, backend="onnx")
    assert loaded[0].backend == "onnx"
    np.testing.assert_allclose(loaded.encode(TEXTS), reference, atol=1e-4)
    assert loaded[0].model.session._session.get_session_options().intra_op_num_threads == torch.get_num_threads()


def test_file_name_picks_a_graph_of_the_model_directory(onnx_saved, reference, tmp_path):
    import shutil

    _, out = onnx_saved
    copy = tmp_path / "m"
    shutil.copytree(out, copy)
    (copy / "onnx" / "model.onnx").rename(copy / "onnx" / "model_O2.onnx")
    with pytest.raises(LoadError, match=r"no graph file model.onnx or onnx/model.onnx") as info:
        stpipe.load(copy, backend="onnx")
    assert "export: true" in str(info.value)
    loaded = stpipe.load(copy, backend="onnx", model_kwargs={"file_name": "model_O2.onnx"})
    np.testing.assert_allclose(loaded.encode(TEXTS), reference, atol=1e-4)


def test_file_name_outside_the_model_directory_is_refused(onnx_saved):
    _, out = onnx_saved
    with pytest.raises(LoadError, match="unsafe"):
        stpipe.load(out, backend="onnx", model_kwargs={"file_name": "../m/onnx/model.onnx"})


def test_unknown_provider_is_a_clear_error(onnx_saved):
    _, out = onnx_saved
    with pytest.raises(LoadError, match="provider 'NopeExecutionProvider' is not available"):
        stpipe.load(out, backend="onnx", model_kwargs={"provider": "NopeExecutionProvider"})


@pytest.mark.slow
def test_openvino_backend_matches_torch_and_round_trips(tiny_bert_dir, reference, tmp_path):
    pipe = build(tiny_bert_dir, backend="openvino", model_kwargs={"export": True})
    np.testing.assert_allclose(pipe.encode(TEXTS), reference, atol=1e-4)
    pipe.save(tmp_path / "m")
    assert (tmp_path / "m" / "openvino" / "openvino_model.bin").is_file()
    np.testing.assert_allclose(stpipe.load(tmp_path / "m", backend="openvino").encode(TEXTS), reference, atol=1e-4)
