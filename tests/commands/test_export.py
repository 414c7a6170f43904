"""``stpipe export`` (:mod:`stpipe.commands.export`), in this process: the sentence-transformers folder it writes
loads back to the same embeddings, and the run settings it needs are checked before any weight loads."""

from __future__ import annotations

import numpy as np


def test_export_writes_a_folder_that_builds_the_same_model(cli, tmp_path, tiny_bert_dir):
    import stpipe

    f = tmp_path / "tiny.yaml"
    f.write_text(f"name: tiny\nmodules:\n  - type: Transformer\n    model_name_or_path: {tiny_bert_dir}\n"
                 "  - type: Pooling\n    pooling_mode: cls\n")
    rc, out, err = cli("export", str(f), f"out={tmp_path / 'saved'}")
    assert rc == 0, err
    assert f"saved tiny in sentence-transformers format to {tmp_path / 'saved'}" in out
    texts = ["a cat", "the dog runs"]
    again = stpipe.build(str(tmp_path / "saved"), device="cpu").encode(texts)
    assert np.abs(again - stpipe.build(f, device="cpu").encode(texts)).max() <= 1e-6


def test_quantize_without_a_graph_format_and_no_out_are_refused(cli, tmp_path):
    rc, _, err = cli("export", f"out={tmp_path / 'x'}", "quantize=int8")
    assert rc == 2 and "[run.quantize] quantize" in err and "add format=onnx or format=openvino" in err
    assert not (tmp_path / "x").exists()
    rc, _, err = cli("export")
    assert rc == 2 and "usage: stpipe export" in err
