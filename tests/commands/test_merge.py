"""``stpipe merge`` as the user meets it: an unverifiable shard set is refused with exit 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stpipe.corpus.merge import write_shard_manifest

REPO = Path(__file__).resolve().parents[2]

def test_merge_refuses_a_truncated_shard_then_merges_the_good_set(tmp_path):
    for i in range(2):
        f = tmp_path / f"e.shard-{i:05d}-of-00002.jsonl"
        f.write_text(f"[{i}]\n[{i}]\n")
        write_shard_manifest(f, {"index": i, "count": 2, "model": "m", "settings": "s", "inputs": {}}, 2)
    good = f.read_bytes()
    f.write_bytes(good[:-2])  # truncated
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "stpipe", "merge", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "e.shard-00001-of-00002.jsonl' is not the shard its run wrote" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "e.jsonl").exists()
    f.write_bytes(good)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 0 and "merged 4 rows" in r.stdout, r.stderr
    assert (tmp_path / "e.jsonl").read_text() == "[0]\n[0]\n[1]\n[1]\n"
