"""``workers=2`` and ``engine=ray`` (a local Ray) give the single-process rows, in the same order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import corpus_lines

REPO = Path(__file__).resolve().parents[2]


def stpipe(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([sys.executable, "-m", "stpipe", *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=600)


@pytest.mark.slow
def test_workers_and_ray_equal_the_single_process_run(static_dir, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(corpus_lines(600, seed=5)) + "\n")
    base = ["encode", str(static_dir), f"inputs={corpus}", "chunk_size=100"]  # 6 chunks
    runs = {"single": [], "workers": ["workers=2"], "ray": ["engine=ray", "workers=2", "ray.num_cpus=2"]}
    out = {}
    for name, extra in runs.items():
        r = stpipe(*base, f"output={tmp_path / name}.npy", *extra)
        assert r.returncode == 0, r.stderr
        out[name] = np.load(tmp_path / f"{name}.npy")
    assert out["single"].shape == (600, 16)
    for name in ("workers", "ray"):
        assert np.abs(out[name] - out["single"]).max() <= 1e-5, name  # same rows, same order


@pytest.mark.slow
def test_a_bad_definition_fails_on_the_driver_before_any_worker_starts(tmp_path):
    (tmp_path / "c.txt").write_text("a cat\n")
    (tmp_path / "m.yaml").write_text("modules:\n  - {type: Poolin, pooling_mode: mean}\n")
    for extra in (["workers=2"], ["engine=ray"]):
        r = stpipe("encode", str(tmp_path / "m.yaml"), f"inputs={tmp_path / 'c.txt'}", *extra)
        assert r.returncode == 2 and "Poolin" in r.stderr and "Traceback" not in r.stderr
        assert "ray" not in r.stderr.lower().replace("array", "")  # Ray never started
