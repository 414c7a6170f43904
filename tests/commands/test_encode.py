"""``stpipe encode`` (:mod:`stpipe.commands.encode`), in this process: the rows the pipeline encodes reach the output
file (.npy, .jsonl), in input order. The numbers against the oracle: tests/test_cli.py (a subprocess)."""

from __future__ import annotations

import json

import numpy as np
import pytest

TEXTS = ["a cat sat", "the dog runs in the rain", "paris is the capital of france"]


@pytest.fixture()
def tiny(tmp_path, tiny_bert_dir):
    f = tmp_path / "tiny.yaml"
    f.write_text(f"name: tiny\nmodules:\n  - type: Transformer\n    model_name_or_path: {tiny_bert_dir}\n"
                 "  - type: Pooling\n    pooling_mode: mean\n")
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n")
    return f


def test_npy_and_jsonl_hold_the_pipelines_rows_in_order(cli, tmp_path, tiny):
    import stpipe

    expected = stpipe.build(tiny, device="cpu").encode(TEXTS)
    rc, _, err = cli("encode", str(tiny), f"inputs={tmp_path / 'in.txt'}", f"output={tmp_path / 'e.npy'}")
    assert rc == 0, err
    got = np.load(tmp_path / "e.npy")
    assert got.shape == (3, 32) and np.abs(got - expected).max() <= 1e-6
    rc, _, err = cli("encode", str(tiny), f"inputs={tmp_path / 'in.txt'}", f"output={tmp_path / 'e.jsonl'}")
    assert rc == 0, err
    rows = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert np.abs(np.array(rows) - expected).max() <= 1e-6


def test_an_output_that_cannot_be_written_is_a_clear_error(cli, tmp_path, tiny):
    (tmp_path / "blocker").write_text("a file, not a directory")
    rc, _, err = cli("encode", str(tiny), f"inputs={tmp_path / 'in.txt'}", f"output={tmp_path / 'blocker' / 'e.npy'}")
    assert rc == 2 and "Traceback" not in err and "blocker" in err
