"""The chunk files of each output format, sparse rows included, and the missing-pyarrow error."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from stpipe.corpus.runner import to_result
from stpipe.corpus.writers import Sparse, pack, unpack, write_chunk


def sparse_rows() -> torch.Tensor:
    dense = torch.tensor([[0.0, 1.5, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.5]])
    return dense.to_sparse()


def test_a_sparse_result_becomes_indices_and_values_per_row_in_parquet_and_jsonl(tmp_path):
    import pyarrow.parquet as pq

    result = to_result(sparse_rows())
    assert isinstance(result, Sparse) and len(result) == 3 and result.dim == 4
    write_chunk(result, ["a", "b", "c"], tmp_path / "c.parquet", with_ids=True)
    table = pq.read_table(tmp_path / "c.parquet")
    assert table.column_names == ["id", "indices", "values"]
    assert table["indices"].to_pylist() == [[1, 3], [], [0, 3]]
    assert table["values"].to_pylist() == [[1.5, 2.0], [], [3.0, 0.5]]
    write_chunk(result, [0, 1, 2], tmp_path / "c.jsonl", with_ids=False)
    assert [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()][0] == {"indices": [1, 3],
                                                                                          "values": [1.5, 2.0]}
    write_chunk(result, [0, 1, 2], tmp_path / "c.npy", with_ids=False)  # .npy: the dense rows
    assert np.array_equal(np.load(tmp_path / "c.npy"), sparse_rows().to_dense().numpy())
    back = unpack(pack(result))  # between processes: .npy bytes, no pickle
    assert np.array_equal(back.indices, result.indices) and np.array_equal(back.offsets, result.offsets)


def test_parquet_without_pyarrow_names_the_extra(monkeypatch, tmp_path):
    from stpipe.corpus.readers import open_source
    from stpipe.errors import CommandError

    (tmp_path / "c.parquet").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(CommandError, match=r"pip install 'stpipe\[corpus\]'"):
        open_source(str(tmp_path / "c.parquet"), 10)


def test_chunk_positions_let_any_chunk_be_read_alone(tmp_path):
    """A chunk starts at a recorded byte offset: a resumed run, a worker, a Ray actor read only their rows."""
    from stpipe.corpus.readers import open_source

    f = tmp_path / "c.csv"
    f.write_text('id,text\n1,"two\nlines"\n\n2,b\n3,c\n4,d\n5,e\n', encoding="utf-8")
    src = open_source({"path": str(f), "column": "text", "id_column": "id"}, chunk_size=2, shard=(0, 1))
    assert src.total == 5 and len(src.positions) == 3
    assert src.read(0) == (["two\nlines", "b"], ["1", "2"])
    assert src.read(2) == (["e"], ["5"])
    shard = open_source({"path": str(f), "column": "text"}, chunk_size=2, shard=(1, 2))  # rows 2 … 4
    assert shard.read(0) == (["c", "d"], [2, 3]) and shard.read(1) == (["e"], [4])
