"""Dense: parity with sentence-transformers' Dense (the oracle), activations by name, the 6.2 format."""

from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers.base.modules import Dense as STDense
from torch import nn

from stpipe.errors import LoadError
from stpipe.modules.dense import Dense
from stpipe.modules.module import FeatureIO


def _pair(in_f, out_f, **kw):
    """An stpipe Dense and an oracle Dense with the same weights."""
    torch.manual_seed(0)
    ref = STDense(in_f, out_f, **kw)
    ours_kw = dict(kw)
    ours = Dense(in_f, out_f, **ours_kw)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


@pytest.mark.parametrize("act", [nn.Tanh(), nn.ReLU(), nn.GELU(), nn.Sigmoid(), nn.SiLU(), None], ids=str)
@pytest.mark.parametrize("shape", [(6, 3), (6, 6)])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_oracle(act, shape, residual, bias):
    ours, ref = _pair(*shape, activation_function=act, use_residual=residual, bias=bias)
    assert sorted(ours.state_dict()) == sorted(ref.state_dict())
    x = torch.randn(5, shape[0])
    a = ours({"sentence_embedding": x})["sentence_embedding"]
    b = ref({"sentence_embedding": x})["sentence_embedding"]
    assert (a - b).abs().max() <= 1e-6


def test_token_embeddings_and_output_name():
    ours, ref = _pair(6, 4, module_input_name="token_embeddings", module_output_name="projected")
    x = torch.randn(2, 7, 6)
    a = ours({"token_embeddings": x})
    b = ref({"token_embeddings": x})
    assert torch.equal(a["token_embeddings"], x)
    assert (a["projected"] - b["projected"]).abs().max() <= 1e-6


def test_independent_math_with_init_lists_and_residual():
    w = [[1.0, 2.0], [0.0, -1.0], [3.0, 0.0]]
    d = Dense(2, 3, activation_function="identity", init_weight=w, init_bias=[0.5, 0.0, -1.0], use_residual=True)
    r = torch.tensor([[1.0, 1.0]] * 3)
    with torch.no_grad():
        d.residual.weight.copy_(r)
    x = torch.tensor([[1.0, 2.0]])
    expected = x @ torch.tensor(w).T + torch.tensor([0.5, 0.0, -1.0]) + x @ r.T
    assert torch.allclose(d({"sentence_embedding": x})["sentence_embedding"], expected)
    same = Dense(2, 2, activation_function=None, init_weight=[[1.0, 0.0], [0.0, 1.0]], init_bias=[0.0, 0.0],
                 use_residual=True)
    assert not hasattr(same, "residual")
    assert torch.allclose(same({"sentence_embedding": x})["sentence_embedding"], 2 * x)


@pytest.mark.parametrize("name, cls", [
    ("tanh", nn.Tanh), ("Identity", nn.Identity), ("relu", nn.ReLU), ("gelu", nn.GELU), ("sigmoid", nn.Sigmoid),
    ("silu", nn.SiLU), ("softmax", nn.Softmax), ("leaky_relu", nn.LeakyReLU), ("torch.nn.Tanh", nn.Tanh),
    ("torch.nn.modules.activation.GELU", nn.GELU), ("torch.nn.modules.linear.Identity", nn.Identity),
    (None, nn.Identity), (nn.ReLU, nn.ReLU),
])
def test_activation_by_name(name, cls):
    d = Dense(4, 2, activation_function=name)
    assert type(d.activation_function) is cls
    assert d.get_config_dict()["activation_function"] == f"{cls.__module__}.{cls.__name__}"


@pytest.mark.parametrize("bad, hint", [
    ("tanhh", "did you mean 'tanh'"), ("torch.nn.Tahn", "did you mean 'torch.nn.Tanh'"),
    ("os.system", None), ("torch.nn.Linear", "expected a torch.nn activation"),
    ("torch.nn.MultiheadAttention", "cannot be created without arguments"),
    ("torch.tensor", None), ("torch.nn.functional.relu", None),
])
def test_bad_activation(bad, hint):
    with pytest.raises(ValueError) as e:
        Dense(4, 2, activation_function=bad)
    assert "activation_function" in str(e.value)
    if hint:
        assert hint in str(e.value)


def test_bad_params():
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        Dense(0, 2)
    with pytest.raises(ValueError, match="out_features"):
        Dense(2, "3")
    with pytest.raises(ValueError, match=r"init_weight must have shape \[2, 4\]"):
        Dense(4, 2, init_weight=[[1.0] * 4])
    with pytest.raises(ValueError, match="init_bias"):
        Dense(4, 2, bias=False, init_bias=[0.0, 0.0])
    with pytest.raises(KeyError, match="module_input_name"):
        Dense(4, 2)({"token_embeddings": torch.zeros(1, 4)})


@pytest.mark.parametrize("kw", [
    {}, {"activation_function": nn.GELU(), "use_residual": True}, {"activation_function": None, "bias": False},
    {"module_input_name": "token_embeddings", "module_output_name": "x", "use_residual": True},
], ids=["default", "gelu-residual", "identity-nobias", "names"])
@pytest.mark.parametrize("shape", [(6, 3), (6, 6)])
def test_saved_files_equal_oracle_and_round_trip(tmp_path, kw, shape):
    ours, ref = _pair(*shape, **kw)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    ours.save(str(a))
    ref.save(str(b))
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir()) == \
        ["config.json", "model.safetensors"]
    assert (a / "config.json").read_text() == (b / "config.json").read_text()
    st_loaded, ours_loaded = STDense.load(str(a)), Dense.load(str(b))
    key = kw.get("module_input_name", "sentence_embedding")
    x = torch.randn(3, shape[0])
    expected = ref({key: x})[ref.module_output_name]
    assert (st_loaded({key: x})[st_loaded.module_output_name] - expected).abs().max() <= 1e-6
    assert (ours_loaded({key: x})[ours_loaded.module_output_name] - expected).abs().max() <= 1e-6


def test_pickle_weights_need_allow_pickle(tmp_path):
    ours, ref = _pair(4, 2)
    ref.save(str(tmp_path), safe_serialization=False)
    assert (tmp_path / "pytorch_model.bin").exists()
    with pytest.raises(LoadError, match="pickle"):
        Dense.load(str(tmp_path))
    loaded = Dense.load(str(tmp_path), allow_pickle=True)
    x = torch.randn(2, 4)
    assert torch.allclose(loaded({"sentence_embedding": x})["sentence_embedding"],
                          ref({"sentence_embedding": x})["sentence_embedding"])


def test_load_errors_and_unknown_keys(tmp_path, caplog):
    ours, _ = _pair(4, 2)
    ours.save(str(tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "future_key": 1}))
    assert Dense.load(str(tmp_path)).out_features == 2
    assert "future_key" in caplog.text
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "activation_function": "mypkg.Evil"}))
    with pytest.raises(LoadError, match="mypkg.Evil"):
        Dense.load(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "use_residual": True}))
    with pytest.raises(LoadError, match="residual.weight"):
        Dense.load(str(tmp_path))  # the weights lack residual.weight
    assert Dense.load(str(tmp_path), overrides={"use_residual": False}).use_residual is False


def test_describe_and_dimension():
    io = Dense.describe({"in_features": 384, "out_features": 128}, {"sentence_embedding": 384})
    assert io == FeatureIO(consumes={"sentence_embedding": "module_input_name"},
                           produces={"sentence_embedding": 128},
                           requires_dim=[("sentence_embedding", 384, "in_features")])
    io = Dense.describe({"in_features": 4, "out_features": 2, "module_input_name": "token_embeddings",
                         "module_output_name": "t2"}, {})
    assert io.consumes == {"token_embeddings": "module_input_name"} and io.produces == {"t2": 2}
    assert Dense(4, 2).get_embedding_dimension() == 2
