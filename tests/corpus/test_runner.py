"""The chunk loop's settings and resume key (:mod:`stpipe.corpus.runner`): a partial output is resumed only when
nothing that decides its bytes changed; NaN or infinite embeddings are never written as a normal result."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import stpipe.hardware as hardware
from stpipe.corpus.readers import open_source
from stpipe.corpus.runner import job_key, refuse_non_finite, settings, to_result
from stpipe.corpus.writers import Sparse
from stpipe.errors import CommandError


def test_settings_and_a_shard_index_out_of_range():
    s = settings({"shard": {"index": 1, "count": 2}, "workers": 2})
    assert s["shard"] == (1, 2) and s["workers"] == 2 and s["engine"] == "local"
    with pytest.raises(CommandError, match="shard.index=2 is not one of 0 … 1"):
        settings({"shard": {"index": 2, "count": 2}})


def test_the_resume_key_changes_with_what_decides_the_output(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("a\nb\n")
    src = open_source(str(f), chunk_size=1)
    key = job_key({"modules": []}, {"batch_size": 8}, src, Path("e.npy"))
    assert key == job_key({"modules": []}, {"batch_size": 8}, src, Path("e.npy"))
    assert key != job_key({"modules": [1]}, {"batch_size": 8}, src, Path("e.npy"))
    assert key != job_key({"modules": []}, {"batch_size": 8, "prompt": "q: "}, src, Path("e.npy"))
    assert key != job_key({"modules": []}, {"batch_size": 8}, src, Path("e.jsonl"))
    os.utime(f, ns=(0, 12345))  # the file changed (its mtime): the source opened now has another fingerprint
    assert key != job_key({"modules": []}, {"batch_size": 8}, open_source(str(f), chunk_size=1), Path("e.npy"))


def test_sparse_embeddings_become_rows_of_indices_and_values():
    emb = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 3.0]]).to_sparse()
    result = to_result(emb)
    assert result.dim == 3 and [(i.tolist(), v.tolist()) for i, v in result.rows()] == [([1], [2.0]),
                                                                                       ([0, 2], [1.0, 3.0])]


def test_workers_are_capped_by_the_machine_with_a_message(monkeypatch):
    monkeypatch.setattr(hardware, "available_cpus", lambda: 8)
    monkeypatch.setattr(hardware, "available_memory", lambda: 3 << 30)  # 3 workers of 1 GiB
    seen: list[str] = []
    assert settings({"workers": 1000}, seen.append)["workers"] == 3
    assert "workers=1000 is more than this machine can run (8 CPUs, 3.0 GiB" in seen[0]
    assert "max_workers=N" in seen[0]
    assert settings({"workers": 2}, seen.append)["workers"] == 2 and len(seen) == 1


def test_an_explicit_max_workers_overrides_the_machine_cap(monkeypatch):
    monkeypatch.setattr(hardware, "available_cpus", lambda: 2)
    seen: list[str] = []
    assert settings({"workers": 6, "max_workers": 6}, seen.append)["workers"] == 6 and not seen
    assert settings({"workers": 9, "max_workers": 6}, seen.append)["workers"] == 6 and "max_workers=6" in seen[0]
    assert settings({"workers": 50, "engine": "ray"}, seen.append)["workers"] == 50  # actors run on the cluster


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
