"""Streaming encode: every input format, every output format, shards + merge — equal to one in-memory encode."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stpipe.cli import main

from .conftest import corpus_lines

REPO = Path(__file__).resolve().parents[2]
N = 2000


def stpipe(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "stpipe", *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=600)


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return corpus_lines(N)


@pytest.fixture(scope="module")
def in_memory(static_dir, lines) -> np.ndarray:
    from stpipe.builder import build

    return build(str(static_dir), device="cpu").encode(lines, batch_size=256)


@pytest.fixture(scope="module")
def txt(tmp_path_factory, lines) -> Path:
    f = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    f.write_text("\n".join(lines[:700]) + "\n\n" + "\n".join(lines[700:]) + "\n")  # a blank line is no input
    return f


def encode(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["encode", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.slow
def test_streamed_npy_jsonl_parquet_equal_the_in_memory_encode(capsys, static_dir, txt, in_memory, tmp_path):
    import pyarrow.parquet as pq

    for out in ("e.npy", "e.jsonl", "e.parquet"):
        rc, stdout, err = encode(capsys, str(static_dir), f"inputs={txt}", f"output={tmp_path / out}",
                                 "chunk_size=700", "batch_size=256")
        assert rc == 0, err
        assert f"encoded {N} inputs" in stdout
    assert np.array_equal(np.load(tmp_path / "e.npy"), in_memory)  # 3 chunks of ≤ 700 rows, one file
    rows = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert np.abs(np.array(rows, dtype=np.float32) - in_memory).max() <= 1e-6
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.column_names == ["id", "embedding"] and table["id"].to_pylist() == list(range(N))
    assert np.array_equal(np.stack(table["embedding"].to_numpy(zero_copy_only=False)), in_memory)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.jsonl", "e.npy", "e.parquet"]  # no partial left


@pytest.mark.slow
def test_tables_by_column_with_ids(capsys, static_dir, lines, in_memory, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 500
    with open(tmp_path / "c.tsv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["doc", "body"])
        w.writerows([f"d{i}", t] for i, t in enumerate(lines[:n]))
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"doc": i, "body": t}) + "\n" for i, t in
                                              enumerate(lines[:n])))
    pq.write_table(pa.table({"body": lines[:n], "doc": [f"d{i}" for i in range(n)]}), tmp_path / "c.parquet",
                   row_group_size=130)
    for src, out in (("c.tsv", "t.parquet"), ("c.parquet", "p.parquet"), ("c.jsonl", "j.jsonl")):
        rc, _, err = encode(capsys, str(static_dir), f"inputs={tmp_path / src}", "inputs.column=body",
                            "inputs.id_column=doc", f"output={tmp_path / out}", "chunk_size=120",
                            "batch_size=256")
        assert rc == 0, err
    for out in ("t.parquet", "p.parquet"):
        table = pq.read_table(tmp_path / out)
        assert table["id"].to_pylist() == [f"d{i}" for i in range(n)]
        assert np.array_equal(np.stack(table["embedding"].to_numpy(zero_copy_only=False)), in_memory[:n])
    recs = [json.loads(x) for x in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert [r["id"] for r in recs] == list(range(n))
    assert np.abs(np.array([r["embedding"] for r in recs], dtype=np.float32) - in_memory[:n]).max() <= 1e-6


@pytest.mark.slow
def test_three_shards_and_merge_equal_the_single_run(capsys, static_dir, txt, tmp_path):
    single = tmp_path / "single.parquet"
    opts = ("chunk_size=400", "batch_size=256")
    assert encode(capsys, str(static_dir), f"inputs={txt}", f"output={single}", *opts)[0] == 0
    (tmp_path / "sh").mkdir()  # stpipe creates no directory the user did not name
    for i in range(3):
        rc, stdout, err = encode(capsys, str(static_dir), f"inputs={txt}", f"output={tmp_path / 'sh' / 'e.parquet'}",
                                 f"shard.index={i}", "shard.count=3", *opts)
        assert rc == 0 and f"encoded {(i + 1) * N // 3 - i * N // 3} inputs" in stdout, err
    assert (tmp_path / "sh" / "e.shard-00001-of-00003.parquet").is_file()
    r = stpipe("merge", str(tmp_path / "sh"))
    assert r.returncode == 0, r.stderr
    assert f"merged {N} rows" in r.stdout
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "sh" / "e.parquet").equals(pq.read_table(single))  # ids: rows of the input


def test_merge_joins_npy_and_jsonl_shards_in_shard_order(tmp_path):
    from stpipe.corpus.merge import merge_dir, write_shard_manifest

    parts = [np.arange(i * 12, i * 12 + 4 * (3 + i), dtype=np.float32).reshape(-1, 4) for i in range(3)]
    info = {"count": 3, "model": "m", "settings": "s", "inputs": {"rows": 12}}
    for i in (2, 0, 1):  # in a sweep's job directories, found in any order
        (tmp_path / str(i)).mkdir()
        np.save(tmp_path / str(i) / f"e.shard-{i:05d}-of-00003.npy", parts[i])
        (tmp_path / str(i) / f"e.shard-{i:05d}-of-00003.jsonl").write_text(f"[{i}]\n[{i}]\n")
        write_shard_manifest(tmp_path / str(i) / f"e.shard-{i:05d}-of-00003.npy", {**info, "index": i}, 3 + i)
        write_shard_manifest(tmp_path / str(i) / f"e.shard-{i:05d}-of-00003.jsonl", {**info, "index": i}, 2)
    done = sorted(merge_dir(tmp_path))
    assert done == [(tmp_path / "e.jsonl", 6), (tmp_path / "e.npy", 12)]
    expected = tmp_path / "expected.npy"
    np.save(expected, np.concatenate(parts))
    assert (tmp_path / "e.npy").read_bytes() == expected.read_bytes()
    assert (tmp_path / "e.jsonl").read_text() == "[0]\n[0]\n[1]\n[1]\n[2]\n[2]\n"


def test_merge_refuses_an_incomplete_set_of_shards(tmp_path):
    from stpipe.corpus.merge import merge_dir
    from stpipe.errors import CommandError

    for i in (0, 2):
        np.save(tmp_path / f"e.shard-{i:05d}-of-00003.npy", np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(CommandError, match=r"shard\(s\) \[1\] of 3 are missing"):
        merge_dir(tmp_path)
    assert not (tmp_path / "e.npy").exists()


def test_shard_slices_are_contiguous_and_cover_the_input():
    from stpipe.corpus.readers import slice_of

    for total in (0, 1, 7, 3000):
        for count in (1, 3, 8):
            bounds = [slice_of(total, i, count) for i in range(count)]
            assert bounds[0][0] == 0 and bounds[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


def test_inputs_file_and_column_compose_as_one_mapping():
    """``inputs=x.csv inputs.column=text``: Hydra cannot set a key below a string, so encode stores the file as
    inputs.path; the run schema takes the mapping (and the plain string from API callers)."""
    from stpipe.config.compose import compose
    from stpipe.config.run import inputs_override

    overrides = [inputs_override(o) for o in ("inputs=x.csv", "inputs.column=body", "batch_size=4")]
    assert overrides[0] == "inputs.path=x.csv"
    run = compose(None, overrides).run
    assert run["inputs"] == {"path": "x.csv", "column": "body", "id_column": None}
