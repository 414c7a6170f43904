"""Joining embedding files (:mod:`stpipe.corpus.merge`): shard names, ``.npy`` parts joined under one header, and
a set of shards merged only when every shard is there once."""

from __future__ import annotations

import numpy as np
import pytest

from stpipe.corpus.merge import concat, find_shards, merge_dir, shard_name
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
