"""``stpipe encode`` where the user meets issue 19's hardening: one writer per output, malformed quoting, overlong
lines, mixed-type ids, empty shards, a linked export — each a clear message and exit 2 (or a clean run), never a
traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stpipe.cli import main

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
