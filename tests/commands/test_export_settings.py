"""The export settings of `stpipe export` / `stpipe evaluate` (stpipe.commands.export_settings): bad settings are
clear errors with exit 2 before any weight loads; calibration texts from a data set or a user's file; the export
cache of evaluate (one writer per key, reuse)."""

from __future__ import annotations

import sys

import pytest
import torch

import stpipe
from stpipe.cli import main
from stpipe.commands import export_settings as es
from stpipe.errors import ConfigError


def run_export(tmp_path, capsys, *overrides):
    code = main(["export", "model=minilm", f"out={tmp_path / 'o'}", *overrides])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("overrides, text", [
    (["format=onnx", "quantize=int4"], "'int4' is not an allowed value"),
    (["format=onnx", "optimize=O7"], "'O7' is not an allowed value"),
    (["optimize=O2"], "optimize=O2 needs a graph"),
    (["format=openvino", "optimize=O2"], "use format=onnx"),
    (["format=onnx", "quantize=int8-static", "calibration=/nonexistent/cal.txt"],
     "calibration file '/nonexistent/cal.txt' does not exist"),
    (["format=onnx", "quantize=int8-static", "calibration=stsb-tain"], "no data set named 'stsb-tain'"),
    (["format=onnx", "quantize=int8-static", "calibration.samples=0"], "calibration.samples"),
])
def test_bad_export_settings_exit_2_and_write_nothing(tmp_path, capsys, overrides, text):
    code, err = run_export(tmp_path, capsys, *overrides)
    assert code == 2 and text in err, err
    assert not (tmp_path / "o").exists()


def test_a_missing_nncf_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "nncf", None)
    code, err = run_export(tmp_path, capsys, "format=openvino", "quantize=int8-static")
    assert code == 2 and "nncf" in err and "pip install 'stpipe[openvino]'" in err


def test_evaluate_refuses_quantize_on_torch(tmp_path, capsys):
    assert main(["evaluate", "model=minilm", "data=stsb-dev", "backend=torch", "quantize=int8"]) == 2
    assert "add backend=onnx or backend=openvino" in capsys.readouterr().err


def test_calibration_from_a_user_file_keeps_distinct_texts_in_order(tmp_path):
    f = tmp_path / "cal.txt"
    f.write_text("b\na\n\nb\nc\nd\n", encoding="utf-8")
    assert es.calibration_texts({"calibration": {"data": str(f), "samples": 3}}) == ["b", "a", "c"]


def test_calibration_defaults_to_the_shipped_stsb_train_sentences():
    texts = es.calibration_texts({})
    assert len(texts) == 300 and len(set(texts)) == 300
    assert texts[:2] == ["A plane is taking off.", "An air plane is taking off."]  # sts-train.csv, line 1


def test_a_retrieval_data_set_is_not_a_calibration_set(tmp_path):
    with pytest.raises(ConfigError, match="calibrates on the sentences of an STS set"):
        es.calibration_texts({"calibration": {"data": "rerank-example"}})


@pytest.mark.slow
def test_cli_static_export_calibrated_on_a_user_file(tiny_bert_dir, tmp_path, capsys):
    import yaml

    model = tmp_path / "tiny.yaml"
    model.write_text(yaml.safe_dump({"name": "tiny", "modules": [
        {"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)}, {"type": "Pooling"}]}))
    cal = tmp_path / "cal.txt"
    cal.write_text("hello world\ncats and dogs\nthe station\n", encoding="utf-8")
    assert main(["export", str(model), f"out={tmp_path / 'o'}", "format=onnx", "quantize=int8-static",
                 f"calibration={cal}", "calibration.samples=2"]) == 0
    assert "onnx graph (int8-static)" in capsys.readouterr().out
    assert stpipe.load(tmp_path / "o").encode(["hello"]).shape == (1, 32)


def test_the_cache_reuses_an_export_and_keys_on_the_weights(tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(es.CACHE_ENV, str(tmp_path / "cache"))
    definition = {"name": "t", "modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                                           {"type": "Pooling"}]}
    pipe = stpipe.build(definition, device="cpu")
    first, reused = es.cached_export(pipe, definition, {"quantize": None}, "onnx")
    again, reused_again = es.cached_export(pipe, definition, {"quantize": None}, "onnx")
    assert (reused, reused_again) == (False, True) and first == again
    with torch.no_grad():
        pipe[0].auto_model.embeddings.word_embeddings.weight[0, 0] += 1.0  # retrained in place: a new key
    other, reused_other = es.cached_export(pipe, definition, {"quantize": None}, "onnx")
    assert other != first and not reused_other


def test_two_racing_jobs_make_one_export(tmp_path, monkeypatch):
    """One writer per key: the second job waits for the first's lock, then reuses its export."""
    import json
    import threading
    import time

    from stpipe.formats import exported

    monkeypatch.setenv(es.CACHE_ENV, str(tmp_path / "cache"))
    made = []

    def slow_export(pipe, out, fmt, **kw):
        made.append(out)
        time.sleep(0.5)
        out.mkdir()
        (out / exported.MANIFEST).write_text(json.dumps({}))
        return out

    monkeypatch.setattr(exported, "export", slow_export)
    monkeypatch.setattr(es, "cache_key", lambda *a: "k")
    results = []
    jobs = [threading.Thread(target=lambda: results.append(es.cached_export(None, {}, {}, "onnx")))
            for _ in range(2)]
    for j in jobs:
        j.start()
    for j in jobs:
        j.join()
    assert len(made) == 1 and sorted(r[1] for r in results) == [False, True]
    assert {r[0] for r in results} == {tmp_path / "cache" / "k"}
