"""Streaming readers (:mod:`stpipe.corpus.readers`): inputs counted before any weight loads, blank lines skipped,
each chunk readable on its own, each shard a contiguous slice."""

from __future__ import annotations

import pytest

from stpipe.corpus.readers import input_spec, open_source, slice_of
from stpipe.errors import CommandError


def test_slices_cover_every_row_once():
    slices = [slice_of(10, i, 3) for i in range(3)]
    assert slices == [(0, 3), (3, 6), (6, 10)]


def test_each_chunk_is_read_on_its_own(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("a\n\nb\nc\nd\ne\n")
    src = open_source(str(f), chunk_size=2)
    assert (src.total, src.rows, len(src.positions)) == (5, 5, 3)
    assert src.read(1) == (["c", "d"], [2, 3]) and src.read(2) == (["e"], [4])
    shard = open_source(str(f), chunk_size=2, shard=(1, 2))
    assert (shard.start, shard.stop) == (2, 5) and shard.read(0) == (["c", "d"], [2, 3])


def test_jsonl_records_with_a_column_and_ids(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text('{"id": "x", "body": "first"}\n{"id": "y", "body": "second"}\n')
    src = open_source({"path": str(f), "column": "body", "id_column": "id"}, chunk_size=10)
    assert src.read(0) == (["first", "second"], ["x", "y"])


def test_what_cannot_be_read_is_refused_before_anything_loads(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        open_source(str(tmp_path / "missing.txt"), chunk_size=2)
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(CommandError, match="no inputs found"):
        open_source(str(tmp_path / "empty.txt"), chunk_size=2)
    with pytest.raises(CommandError, match="expected a file name"):
        input_spec(3)
