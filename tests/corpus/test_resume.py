"""Resume after SIGKILL, another command's partial output, and bad input (pre-scan vs mid-stream)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stpipe.cli import main

from .conftest import corpus_lines

REPO = Path(__file__).resolve().parents[2]


def encode(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["encode", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def done_chunks(partial: Path) -> int:
    try:
        return len(json.loads((partial / "manifest.json").read_text())["done"])
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
def test_sigkill_then_rerun_is_byte_identical_and_redoes_at_most_one_chunk(capsys, static_dir, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(corpus_lines(3000, seed=3)) + "\n")
    args = [str(static_dir), f"inputs={corpus}", "chunk_size=100", "batch_size=16"]  # 30 chunks
    ref = tmp_path / "ref.npy"
    assert encode(capsys, *args, f"output={ref}")[0] == 0
    out = tmp_path / "out" / "e.npy"
    out.parent.mkdir()  # stpipe creates no directory the user did not name
    partial = out.with_name(".e.npy.partial")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "stpipe", "encode", *args, f"output={out}"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while done_chunks(partial) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    committed = done_chunks(partial)
    assert 1 <= committed < 30 and not out.exists()  # nothing half-written under the output's name
    rc, stdout, err = encode(capsys, *args, f"output={out}")
    assert rc == 0, err
    # the rerun starts at the first chunk not committed: only the chunk in flight at the kill is redone
    assert f"resumed after chunk {committed}: encoded {30 - committed} of 30 chunks" in stdout
    assert out.read_bytes() == ref.read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["e.npy"]


@pytest.mark.slow
def test_a_partial_output_of_another_command_is_not_resumed(capsys, static_dir, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(corpus_lines(40)) + "\n")
    out = tmp_path / "e.npy"
    partial = tmp_path / ".e.npy.partial"
    partial.mkdir()
    (partial / "manifest.json").write_text(json.dumps({"stpipe_partial": 1, "key": "another", "done": [
        {"chunk": 0, "file": "chunk-000000.npy", "rows": 10, "bytes": 208}]}))
    np.save(partial / "chunk-000000.npy", np.ones((10, 16), dtype=np.float32))
    args = [str(static_dir), f"inputs={corpus}", f"output={out}", "chunk_size=10"]
    rc, _, err = encode(capsys, *args, "resume=true")
    assert rc == 2 and "was made by another command" in err and not out.exists()
    rc, stdout, err = encode(capsys, *args)
    assert rc == 0 and "resumed" not in stdout, err
    assert not (np.load(out) == 1).all(axis=1).any()  # the foreign chunk of ones was not used
    assert not partial.exists()


@pytest.mark.parametrize("name, content, column, needle", [
    ("c.csv", "id,body\n1,a cat\n", "text", "c.csv: no column 'text'; the columns are ['id', 'body']"),
    ("c.jsonl", '"a cat"\n{"text": "a dog"}\n{"text": "a bird",\n', None, "c.jsonl:3: invalid JSON"),
    ("c.parquet", "this is not parquet", None, "c.parquet: not a readable Parquet file"),
])
def test_bad_input_fails_in_the_pre_scan_before_any_weight_loads(capsys, monkeypatch, tmp_path, name, content,
                                                                   column, needle):
    import stpipe.corpus.runner as runner

    def no_build(*a, **k):
        raise AssertionError("the model was built")

    monkeypatch.setattr(runner, "build_pipeline", no_build)
    (tmp_path / name).write_text(content)
    extra = [f"inputs.column={column}"] if column else []
    rc, _, err = encode(capsys, "model=minilm", f"inputs={tmp_path / name}", *extra, f"output={tmp_path / 'e.npy'}")
    assert rc == 2 and needle in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no output, no partial output


@pytest.mark.slow
def test_a_bad_image_mid_stream_stops_with_its_line_and_keeps_the_chunks_before(capsys, tiny_clip_dir, tmp_path):
    from PIL import Image

    (tmp_path / "m.yaml").write_text(
        f"modules:\n  - type: Transformer\n    model_name_or_path: '{tiny_clip_dir}'\n"
        "    module_output_name: sentence_embedding\n    modality_config:\n"
        "      text: {method: get_text_features, method_output_name: pooler_output}\n"
        "      image: {method: get_image_features, method_output_name: pooler_output}\n")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    Image.new("RGB", (32, 32), (10, 200, 10)).save(tmp_path / "good.png")
    (tmp_path / "c.txt").write_text("a cat\na dog\nthe sea\nthe sun\nbad.png\ngood.png\n")
    args = [str(tmp_path / "m.yaml"), f"inputs={tmp_path / 'c.txt'}", f"output={tmp_path / 'e.npy'}",
            "chunk_size=2"]
    rc, _, err = encode(capsys, *args)
    assert rc == 2 and f"{tmp_path / 'c.txt'}:5: cannot open image" in err
    assert done_chunks(tmp_path / ".e.npy.partial") == 2 and not (tmp_path / "e.npy").exists()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(tmp_path / "bad.png")  # the user fixes the image
    rc, stdout, err = encode(capsys, *args)
    assert rc == 0 and "resumed after chunk 2: encoded 1 of 3 chunks" in stdout, err
    assert np.load(tmp_path / "e.npy").shape[0] == 6
