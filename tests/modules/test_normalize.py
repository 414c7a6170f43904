"""Normalize: parity with sentence-transformers' Normalize (the oracle) and the 6.x config file."""

from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers.base.modules import Normalize as STNormalize

from stpipe.modules.normalize import Normalize


@pytest.mark.parametrize("kw", [{}, {"module_input_name": "token_embeddings", "module_output_name": "tn"}])
def test_matches_oracle(kw):
    key = kw.get("module_input_name", "sentence_embedding")
    x = torch.randn(3, 5, 8) * 10
    x[0, 0] = 0.0  # a zero vector stays zero (eps 1e-12)
    a, b = Normalize(**kw)({key: x}), STNormalize(**kw)({key: x})
    out = kw.get("module_output_name", key)
    assert (a[out] - b[out]).abs().max() <= 1e-6
    assert torch.allclose(a[out][1].norm(dim=-1), torch.ones(5))
    assert torch.equal(a[out][0, 0], torch.zeros(8))


def test_missing_input_is_a_noop():
    feats = {"token_embeddings": torch.ones(1, 2, 3)}
    assert Normalize()(feats) == feats and set(feats) == {"token_embeddings"}


@pytest.mark.parametrize("kw", [{}, {"module_output_name": "unit"}, {"module_input_name": "x"}])
def test_saved_json_equals_oracle_and_round_trips(tmp_path, kw):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    Normalize(**kw).save(str(a))
    STNormalize(**kw).save(str(b))
    assert [p.name for p in a.iterdir()] == ["config.json"]
    assert (a / "config.json").read_text() == (b / "config.json").read_text()
    assert STNormalize.load(str(a)).get_config_dict() == Normalize.load(str(b)).get_config_dict()


def test_missing_folder_or_file_means_defaults(tmp_path):
    assert Normalize.load(str(tmp_path), subfolder="2_Normalize").get_config_dict() == \
        {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"}
    assert Normalize.load().module_input_name == "sentence_embedding"
    (tmp_path / "config.json").write_text(json.dumps({"module_input_name": "a", "module_output_name": "b"}))
    n = Normalize.load(str(tmp_path), overrides={"module_output_name": "c"})
    assert (n.module_input_name, n.module_output_name) == ("a", "c")


def test_minilm_has_no_normalize_folder(minilm_dir):
    # all-MiniLM-L6-v2 lists 2_Normalize in modules.json but ships no folder
    assert not (minilm_dir / "2_Normalize").exists()
    assert Normalize.load(str(minilm_dir), subfolder="2_Normalize").module_input_name == "sentence_embedding"


def test_bad_params_and_describe():
    with pytest.raises(ValueError, match="module_input_name"):
        Normalize(module_input_name="")
    io = Normalize.describe({}, {"sentence_embedding": 384})
    assert io.consumes == {"sentence_embedding": "module_input_name"}
    assert io.produces == {"sentence_embedding": 384}
    assert Normalize.describe({"module_output_name": "u"}, {}).produces == {"u": None}
