"""encode never writes NaN or infinite embeddings as a normal result (a model trained into NaN is refused)."""

from __future__ import annotations

import numpy as np
import pytest

from stpipe.corpus.runner import refuse_non_finite
from stpipe.corpus.writers import Sparse
from stpipe.errors import CommandError


def test_non_finite_embeddings_are_refused_with_the_inputs():
    ok = np.ones((3, 4), dtype=np.float32)
    assert refuse_non_finite(ok, ["a", "b", "c"]) is ok
    bad = ok.copy()
    bad[1, 2], bad[2, 0] = np.nan, np.inf
    with pytest.raises(CommandError, match=r"non-finite embeddings \(NaN or inf\) for 2 of 3 inputs of this chunk "
                                           r"\(input 1 \('b'\), 2 \('c'\)\): nothing is written"):
        refuse_non_finite(bad, ["a", "b", "c"])
    sparse = Sparse(np.array([0, 1, 2]), np.array([1.0, np.nan, 2.0], dtype=np.float32), np.array([0, 1, 3]), 8)
    with pytest.raises(CommandError, match=r"for 1 of 2 inputs .*input 1 \('y'\)"):
        refuse_non_finite(sparse, ["x", "y"])
