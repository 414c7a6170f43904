"""Joining embedding files (:mod:`stpipe.corpus.merge`): shard names, ``.npy`` parts joined under one header, and
a set of shards merged only when every shard is there once."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from stpipe.corpus.merge import concat, find_shards, manifest_path, merge_dir, shard_name, write_shard_manifest
from stpipe.errors import CommandError


def test_shard_names():
    assert shard_name("out/e.npy", 1, 3) == "out/e.shard-00001-of-00003.npy"
    assert shard_name("e.npy", 0, 1) == "e.npy"


def test_npy_parts_become_one_array_in_order(tmp_path):
    parts = []
    for i, rows in enumerate((2, 3)):
        parts.append(tmp_path / f"p{i}.npy")
        np.save(parts[-1], np.full((rows, 4), i, dtype=np.float32))
    assert concat(parts, tmp_path / "all.npy") == 5
    joined = np.load(tmp_path / "all.npy")
    assert joined.shape == (5, 4) and joined[:, 0].tolist() == [0, 0, 1, 1, 1]


def test_a_shard_found_twice_or_missing_merges_nothing(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "e.shard-00000-of-00002.jsonl").write_text("[0]\n")
    with pytest.raises(CommandError, match="is there twice"):
        find_shards(tmp_path)
    (tmp_path / "b" / "e.shard-00000-of-00002.jsonl").unlink()
    with pytest.raises(CommandError, match=r"shard\(s\) \[1\] of 2 are missing"):
        merge_dir(tmp_path)
    assert not (tmp_path / "e.jsonl").exists()
    (tmp_path / "b" / "e.shard-00001-of-00002.jsonl").write_text("[1]\n")
    with pytest.raises(CommandError, match="give a .jsonl name"):
        merge_dir(tmp_path, str(tmp_path / "x.npy"))


INFO = {"count": 3, "model": "m1", "settings": "s1", "inputs": {"rows": 9, "size": 90}}


def shards(root, rows=(3, 3, 3), **info) -> list:
    root.mkdir(exist_ok=True)
    files = []
    for i, n in enumerate(rows):
        f = root / f"e.shard-{i:05d}-of-{len(rows):05d}.npy"
        np.save(f, np.full((n, 4), i, dtype=np.float32) if n else np.zeros((0,), dtype=np.float32))
        write_shard_manifest(f, {**INFO, "count": len(rows), "index": i, **info}, n)
        files.append(f)
    return files


def refused(root, needle: str) -> None:
    with pytest.raises(CommandError, match=needle):
        merge_dir(root)
    assert not (root / "e.npy").exists()


def test_verified_shards_merge_in_order(tmp_path):
    shards(tmp_path)
    assert merge_dir(tmp_path) == [(tmp_path / "e.npy", 9)]
    assert np.array_equal(np.load(tmp_path / "e.npy")[:, 0], np.repeat([0, 1, 2], 3))


def test_a_truncated_shard_is_refused(tmp_path):
    f = shards(tmp_path)[1]
    f.write_bytes(f.read_bytes()[:-16])
    refused(tmp_path, r"e.shard-00001-of-00003.npy' is not the shard its run wrote \(\d+ bytes, its manifest says")


def test_an_edited_shard_of_the_same_size_is_refused(tmp_path):
    f = shards(tmp_path)[2]
    data = bytearray(f.read_bytes())
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    refused(tmp_path, "its content changed")


def test_shards_of_another_model_or_settings_are_refused(tmp_path):
    shards(tmp_path)
    other = tmp_path / "other"
    shards(other, model="m2")
    shutil.copy(other / "e.shard-00002-of-00003.npy", tmp_path)
    shutil.copy(manifest_path(other / "e.shard-00002-of-00003.npy"), tmp_path)
    shutil.rmtree(other)
    refused(tmp_path, "was encoded with another model")
    shards(tmp_path)
    m = json.loads(manifest_path(tmp_path / "e.shard-00001-of-00003.npy").read_text())
    m["settings"] = "s2"
    manifest_path(tmp_path / "e.shard-00001-of-00003.npy").write_text(json.dumps(m))
    refused(tmp_path, "another encode settings")


def test_a_symlinked_shard_is_refused_never_followed(tmp_path):
    files = shards(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / files[0].name).symlink_to(files[0])
    refused(tmp_path / "b", "is a link")
    files[0].unlink()
    files[0].symlink_to(files[1])
    refused(tmp_path / "a", "is a link")


def test_a_duplicate_shard_is_refused(tmp_path):
    shards(tmp_path / "x")
    shards(tmp_path / "y")
    refused(tmp_path, "is there twice")


def test_a_shard_without_its_manifest_is_refused(tmp_path):
    f = shards(tmp_path)[0]
    manifest_path(f).write_text('{"stpipe_shard": 1, "mod')  # truncated
    refused(tmp_path, "no valid manifest")
    manifest_path(f).unlink()
    refused(tmp_path, "no valid manifest")


def test_empty_shards_merge_as_nothing(tmp_path):
    shards(tmp_path, rows=(0, 2, 0, 1))
    assert merge_dir(tmp_path) == [(tmp_path / "e.npy", 3)]
    assert np.load(tmp_path / "e.npy").shape == (3, 4)


@pytest.mark.slow
def test_more_shards_than_inputs_encode_and_merge(capsys, static_dir, tmp_path):
    """An empty shard (3 shards of 2 inputs) is an empty file with its manifest, not an IndexError."""
    from stpipe.cli import main

    (tmp_path / "c.txt").write_text("a cat\na dog\n")
    (tmp_path / "sh").mkdir()  # stpipe creates no directory the user did not name
    for i in range(3):
        capsys.readouterr()
        rc = main(["encode", str(static_dir), f"inputs={tmp_path / 'c.txt'}", f"output={tmp_path / 'sh' / 'e.npy'}",
                   f"shard.index={i}", "shard.count=3"])
        out = capsys.readouterr()
        assert rc == 0 and f"encoded {(i + 1) * 2 // 3 - i * 2 // 3} input" in out.out, out.err
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "sh")]) == 0
    assert "merged 2 rows" in capsys.readouterr().out
    assert np.load(tmp_path / "sh" / "e.npy").shape == (2, 16)
