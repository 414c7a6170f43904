"""The checks of the files a node names (:mod:`stpipe.config.checks_files`): ``load_from`` folders, model and
tokenizer paths (local, the model store, the Hugging Face cache; a hub id is a warning online only)."""

from __future__ import annotations

import json

from stpipe.config.checks import CheckContext, run_checks

from .test_checks import _t, found


def test_load_from_must_be_a_directory(tmp_path):
    (tmp_path / "2_Normalize").mkdir()  # no config file: Normalize's defaults apply
    d = {"modules": [{"type": "Normalize", "load_from": "2_Normalize"}, {"type": "Normalize", "load_from": "nope"}]}
    assert found(d, "check.load-from", base_dir=tmp_path)[0] == [("check.load-from", "modules[1].load_from")]


def test_model_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    good = tmp_path / "good"
    good.mkdir()
    (good / "config.json").write_text(json.dumps({"hidden_size": 8}))
    (tmp_path / "empty").mkdir()
    d = {"modules": [_t(model_name_or_path="good"), _t(model_name_or_path="empty"),
                     _t(model_name_or_path="org/not-cached-model-xyz")]}
    codes, out = found(d, "check.model-path", base_dir=tmp_path)
    assert codes == [("check.model-path", "modules[1].model_name_or_path"),
                     ("check.model-path", "modules[2].model_name_or_path")]
    assert out[0].message == "'empty' holds no config.json"
    assert [p.severity for p in out] == ["error", "error"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    out = [p for p in run_checks(d, CheckContext(base_dir=tmp_path)) if p.code == "check.model-path"]
    assert [p.severity for p in out] == ["error", "warning"]  # online, a hub id may still be downloaded


def test_bundled_model_name_resolves(minilm_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert found({"modules": [_t(model_name_or_path="all-MiniLM-L6-v2")]}, "check.model-path")[0] == []


def test_load_from_folder_must_supply_what_the_node_omits(tmp_path):
    (tmp_path / "2_Dense").mkdir()
    (tmp_path / "2_Dense" / "config.json").write_text(json.dumps({"in_features": 4, "out_features": 2}))
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"hidden_size": 4}))
    d = {"modules": [{"type": "Dense", "load_from": "2_Dense"}, {"type": "Dense", "load_from": "bert"},
                     {"type": "Dense", "load_from": "bert", "in_features": 4, "out_features": 2}]}
    codes, out = found(d, "check.load-from", base_dir=tmp_path)
    assert codes == [("check.load-from", "modules[1].load_from")]
    assert out[0].message.startswith("Dense needs in_features, out_features, found neither in this node nor in ")
