"""Checkpointed output (:mod:`stpipe.corpus.writers`): a chunk's embeddings travel as bytes and come back equal,
dense or sparse."""

from __future__ import annotations

import numpy as np

from stpipe.corpus.writers import Sparse, pack, unpack


def test_dense_and_sparse_chunks_round_trip_through_bytes():
    dense = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(unpack(pack(dense)), dense)
    sparse = Sparse(np.array([0, 2, 1]), np.array([0.5, 1.5, 2.0], dtype=np.float32), np.array([0, 2, 3]), dim=4)
    back = unpack(pack(sparse))
    assert isinstance(back, Sparse) and back.dim == 4 and len(back) == 2
    rows = [(i.tolist(), v.tolist()) for i, v in back.rows()]
    assert rows == [([0, 2], [0.5, 1.5]), ([1], [2.0])]
