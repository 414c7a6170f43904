"""Pooling: parity with sentence-transformers' Pooling (the oracle) and the 6.2 on-disk format."""

from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers.sentence_transformer.modules import Pooling as STPooling

from stpipe.modules.module import FeatureIO
from stpipe.modules.pooling import POOLING_MODES, Pooling

MODES = list(POOLING_MODES)
COMBOS = [["cls", "mean"], ["mean", "max", "lasttoken"], MODES, ["weightedmean", "cls"]]


def _batch(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 6, 8, generator=g).to(dtype)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0],    # right padding
                         [0, 0, 1, 1, 1, 1],    # left padding
                         [1, 1, 1, 1, 1, 1],    # full
                         [1, 0, 0, 0, 0, 0]])   # a single token
    return x, mask


def _both(mode, feats, include_prompt=True):
    ours = Pooling(8, mode, include_prompt=include_prompt)(dict(feats))["sentence_embedding"]
    ref = STPooling(8, mode, include_prompt=include_prompt)(dict(feats))["sentence_embedding"]
    return ours, ref


def _close(a, b, tol=1e-5):
    """Same shape and dtype; NaN and ±inf at the same places (same sign); finite values within ``tol``."""
    assert a.shape == b.shape and a.dtype == b.dtype
    assert torch.equal(torch.isnan(a), torch.isnan(b)), "NaN at different places"
    assert torch.equal(torch.isinf(a), torch.isinf(b)) and torch.equal(a[torch.isinf(a)], b[torch.isinf(b)])
    finite = torch.isfinite(a)
    diff = (a.float() - b.float())[finite].abs().max().item() if finite.any() else 0.0
    assert diff <= tol, diff


@pytest.mark.parametrize("a, b", [([float("nan")], [0.0]), ([0.0], [float("nan")]), ([float("inf")], [float("-inf")]),
                                  ([1.0, float("nan")], [1.0, 5.0])])
def test_the_comparator_does_not_hide_nan_or_sign(a, b):
    with pytest.raises(AssertionError):
        _close(torch.tensor(a), torch.tensor(b))


@pytest.mark.parametrize("mode", MODES + COMBOS, ids=str)
def test_every_mode_and_combination_matches_oracle(mode):
    x, mask = _batch()
    _close(*_both(mode, {"token_embeddings": x, "attention_mask": mask}))


@pytest.mark.parametrize("prompt_length", [1, 2, 3, torch.tensor([2, 2, 2, 2])], ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_include_prompt_false_with_left_and_right_padding(mode, prompt_length):
    x, mask = _batch(seed=1)
    feats = {"token_embeddings": x, "attention_mask": mask, "prompt_length": prompt_length}
    ours, ref = _both(mode, feats, include_prompt=False)
    _close(ours, ref)
    # include_prompt=True ignores prompt_length entirely
    _close(*_both(mode, feats, include_prompt=True))
    assert torch.equal(feats["attention_mask"], mask)  # the caller's mask is not modified


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_accumulates_like_oracle(dtype):
    x, mask = _batch(dtype, seed=2)
    ours, ref = _both(MODES, {"token_embeddings": x * 30, "attention_mask": mask})
    assert ours.dtype == dtype
    _close(ours, ref, tol=0.0)


def test_independent_math_from_reference():
    x = torch.arange(24.0).view(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    out = lambda mode: Pooling(4, mode)({"token_embeddings": x, "attention_mask": mask})["sentence_embedding"]  # noqa: E731
    assert out("mean").tolist() == [[2, 3, 4, 5], [18, 19, 20, 21]]
    assert torch.allclose(out("weightedmean"), torch.tensor([[8 / 3 + i for i in range(4)],
                                                             [56 / 3 + i for i in range(4)]]))
    assert out("lasttoken").tolist() == [x[0, 1].tolist(), x[1, 2].tolist()]
    assert out("cls").tolist() == [x[0, 0].tolist(), x[1, 1].tolist()]
    assert out(["cls", "max"]).shape == (2, 8)


def test_optional_inputs_match_oracle():
    x, mask = _batch(seed=3)
    for extra in ({"token_weights_sum": torch.tensor([2.0, 3.0, 4.0, 5.0])},
                  {"cls_token_embeddings": torch.ones(4, 8)},
                  {"attention_mask": torch.ones(4, 9, dtype=torch.long)}):  # width != T → all ones
        feats = {"token_embeddings": x, "attention_mask": mask, **extra}
        _close(*_both(MODES, feats))
    ours = Pooling(8, "mean")({"token_embeddings": x})["sentence_embedding"]
    assert torch.allclose(ours, x.mean(1))


def test_flattened_segments_equal_padded_oracle():
    x, _ = _batch(seed=4)
    lengths = [3, 5, 1]
    flat = torch.cat([x[i, :n] for i, n in enumerate(lengths)]).unsqueeze(0)
    cu = torch.tensor([0, 3, 8, 9])
    padded = torch.zeros(3, 5, 8)
    mask = torch.zeros(3, 5, dtype=torch.long)
    for i, n in enumerate(lengths):
        padded[i, :n], mask[i, :n] = x[i, :n], 1
    ours = Pooling(8, MODES)({"token_embeddings": flat, "cu_seq_lens_q": cu})["sentence_embedding"]
    ref = STPooling(8, MODES)({"token_embeddings": padded, "attention_mask": mask})["sentence_embedding"]
    _close(ours, ref)


def test_embedding_dimension_optional():
    p = Pooling(pooling_mode=["mean", "max"])
    assert p.get_embedding_dimension() is None
    p.bind_upstream(8)
    assert p.get_embedding_dimension() == 16
    q = Pooling()
    q({"token_embeddings": torch.zeros(1, 2, 5)})
    assert q.embedding_dimension == 5 and q.get_config_dict()["embedding_dimension"] == 5
    r = Pooling(3)
    r.bind_upstream(8)  # an explicit value is kept
    assert r.embedding_dimension == 3


@pytest.mark.parametrize("bad", ["meen", ["mean", "maxx"], [], 3])
def test_invalid_mode(bad):
    with pytest.raises(ValueError) as e:
        Pooling(8, bad)
    assert "cls', 'max', 'mean', 'mean_sqrt_len_tokens', 'weightedmean', 'lasttoken" in str(e.value) or \
        "cls, max, mean, mean_sqrt_len_tokens, weightedmean, lasttoken" in str(e.value)
    if isinstance(bad, str):
        with pytest.raises(ValueError):  # the oracle refuses it too
            STPooling(8, bad)


def test_invalid_mode_suggests():
    with pytest.raises(ValueError, match="did you mean 'mean'"):
        Pooling(8, "meen")
    with pytest.raises(ValueError, match="embedding_dimension"):
        Pooling(0)
    with pytest.raises(ValueError, match="include_prompt"):
        Pooling(8, include_prompt="no")


@pytest.mark.parametrize("mode", ["mean", ["cls", "mean", "max"], ("lasttoken",)], ids=str)
@pytest.mark.parametrize("include_prompt", [True, False])
def test_saved_json_equals_oracle_and_round_trips(tmp_path, mode, include_prompt):
    ours, ref = Pooling(8, mode, include_prompt), STPooling(8, mode, include_prompt)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ours.save(str(tmp_path / "a"))
    ref.save(str(tmp_path / "b"))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["config.json"]
    assert (tmp_path / "a/config.json").read_text() == (tmp_path / "b/config.json").read_text()
    # stpipe → sentence-transformers and back
    st_loaded = STPooling.load(str(tmp_path / "a"))
    ours_loaded = Pooling.load(str(tmp_path / "b"))
    assert st_loaded.get_config_dict() == ref.get_config_dict()
    assert ours_loaded.pooling_mode == ours.pooling_mode
    x, mask = _batch(seed=5)
    feats = {"token_embeddings": x, "attention_mask": mask, "prompt_length": 2}
    _close(ours_loaded(dict(feats))["sentence_embedding"], st_loaded(dict(feats))["sentence_embedding"])


@pytest.mark.parametrize("legacy", [
    {"word_embedding_dimension": 8, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
     "pooling_mode_max_tokens": True, "pooling_mode_mean_sqrt_len_tokens": False,
     "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": False},
    {"word_embedding_dimension": 8, "pooling_mode_mean_tokens": False},
    {"word_embedding_dimension": 8, "pooling_mode": "cls", "pooling_mode_mean_tokens": True},
    {"word_embedding_dimension": 8, "pooling_mode_lasttoken": True, "pooling_mode_weightedmean_tokens": True},
], ids=["all-booleans", "none-active", "mode-wins", "two-modes"])
def test_legacy_config_keys(tmp_path, legacy):
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    ours, ref = Pooling.load(str(tmp_path)), STPooling.load(str(tmp_path))
    assert ours.get_config_dict() == {**ref.get_config_dict(), "pooling_mode": ours.get_config_dict()["pooling_mode"]}
    assert ours.modes == ((ref.pooling_mode,) if isinstance(ref.pooling_mode, str) else tuple(ref.pooling_mode))


def test_load_overrides_win_and_missing_file_gives_defaults(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"embedding_dimension": 8, "pooling_mode": "cls"}))
    p = Pooling.load(str(tmp_path), overrides={"pooling_mode": "max"})
    assert p.pooling_mode == "max" and p.embedding_dimension == 8
    empty = tmp_path / "empty"
    empty.mkdir()
    assert Pooling.load(str(empty)).get_config_dict() == {"embedding_dimension": None, "pooling_mode": "mean",
                                                           "include_prompt": True}


def test_describe():
    io = Pooling.describe({"embedding_dimension": 8, "pooling_mode": ["cls", "mean"]}, {"token_embeddings": 8})
    assert io == FeatureIO(consumes={"token_embeddings": "", "attention_mask": ""},
                           produces={"sentence_embedding": 16},
                           requires_dim=[("token_embeddings", 8, "embedding_dimension")])
    io = Pooling.describe({}, {"token_embeddings": 32})
    assert io.produces == {"sentence_embedding": 32} and io.requires_dim == []
    assert Pooling.describe({}, {}).produces == {"sentence_embedding": None}


LEGACY_FLAGS = [{"pooling_mode_cls_token": True}, {"pooling_mode_max_tokens": True, "pooling_mode_mean_tokens": True},
                {"pooling_mode_mean_tokens": False}, {"pooling_mode_lasttoken": True, "pooling_mode_cls_token": True},
                {"pooling_mode_weightedmean_tokens": True, "pooling_mode_mean_sqrt_len_tokens": True,
                 "pooling_mode": "max"}]


@pytest.mark.parametrize("flags", LEGACY_FLAGS, ids=str)
def test_deprecated_flags_map_to_pooling_mode_like_the_oracle(flags):
    with pytest.warns(FutureWarning) as expected:
        ref = STPooling(8, **flags)
    with pytest.warns(FutureWarning) as got:
        ours = Pooling(8, **flags)
    assert [str(w.message) for w in got] == [str(w.message) for w in expected]
    assert ours.pooling_mode == ref.pooling_mode and ours.pooling_output_dimension == ref.pooling_output_dimension
    x, mask = _batch()
    _close(ours({"token_embeddings": x, "attention_mask": mask})["sentence_embedding"],
           ref({"token_embeddings": x, "attention_mask": mask})["sentence_embedding"])
    produced = Pooling.describe(flags, {"token_embeddings": 8}).produces
    assert produced == {"sentence_embedding": ours.pooling_output_dimension}


def test_an_unknown_keyword_is_still_a_type_error():
    with pytest.raises(TypeError, match="pooling_mode_cls"):
        Pooling(8, pooling_mode_cls=True)


def test_validation_warns_about_the_deprecated_flags():
    from stpipe.config.validate import inspect_definition

    report = inspect_definition({"modules": [{"type": "StaticEmbedding", "tokenizer": "t", "embedding_dim": 8},
                                             {"type": "Pooling", "pooling_mode_cls_token": True,
                                              "pooling_mode_max_tokens": True}]})
    deprecated = [p for p in report.problems if p.code == "check.deprecated"]
    assert [(p.severity, p.path_str, p.hint) for p in deprecated] == [
        ("warning", "modules[1].pooling_mode_cls_token", "write pooling_mode: [cls, max] instead")]
    assert not [p for p in report.problems if p.code.startswith("schema.")]
