"""``stpipe encode`` (:mod:`stpipe.commands.encode`), in this process: the rows the pipeline encodes reach the output
file (.npy, .jsonl), in input order. The numbers against the oracle: tests/test_cli.py (a subprocess)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stpipe.cli import main

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


REPO = Path(__file__).resolve().parents[2]


def encode(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["encode", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.slow
def test_bad_inputs_are_clear_errors_before_any_weight_loads(capsys, tmp_path):
    (tmp_path / "c.csv").write_text('id,text\n1,a\n2,"b\n3,c\n')
    (tmp_path / "c.txt").write_text("ok\n" + "x" * 3000 + "\n")
    (tmp_path / "c.jsonl").write_text('{"id": 1, "text": "a"}\n{"id": "x", "text": "b"}\n')
    for args, needle in (
            (["inputs=" + str(tmp_path / "c.csv")], "c.csv:3: malformed CSV quoting (a quote opened here is never"),
            (["inputs=" + str(tmp_path / "c.txt"), "max_input_chars=2000"], "c.txt:2: an input longer than "
                                                                           "max_input_chars=2000"),
            (["inputs=" + str(tmp_path / "c.jsonl"), "inputs.id_column=id"], "c.jsonl:2: id 'id' is a str")):
        rc, _, err = encode(capsys, "model=minilm", *args, f"output={tmp_path / 'e.parquet'}")
        assert rc == 2 and needle in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "c.jsonl", "c.txt"]


def test_a_linked_export_is_refused_by_encode(capsys, tmp_path):
    root = tmp_path / "exp"
    root.mkdir()
    (root / "stpipe_export.json").write_text(json.dumps({
        "stpipe_export": 1, "format": "onnx", "precision": "fp32", "router": None,
        "routes": {"": {"graph": "model.onnx", "tokenizer": ".", "inputs": ["input_ids"]}}}))
    (tmp_path / "outside.onnx").write_bytes(b"graph")
    (root / "model.onnx").symlink_to(tmp_path / "outside.onnx")
    (tmp_path / "c.txt").write_text("a cat\n")
    rc, _, err = encode(capsys, str(root), f"inputs={tmp_path / 'c.txt'}")
    assert rc == 2 and "outside the export" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_second_writer_of_one_output_is_refused(tmp_path):
    """In a subprocess, as the user meets it: the lock of a live run (this test's process) refuses the second run
    before any weight loads (taking over a dead run's lock: tests/test_lock.py)."""
    (tmp_path / "c.txt").write_text("a cat\na dog\n")
    lock = tmp_path / ".e.npy.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "stpipe", "encode", "model=minilm", f"inputs={tmp_path / 'c.txt'}",
           f"output={tmp_path / 'e.npy'}"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert r.returncode == 2 and "is being written by another run (process" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "e.npy").exists()
    assert lock.exists()  # the live run's lock stays
