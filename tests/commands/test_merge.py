"""``stpipe merge DIR [out=FILE]`` (:mod:`stpipe.commands.merge`): the shards of ``stpipe encode shard.count=N``
joined in shard order; every mistake is exit 2 with the usage line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stpipe.corpus.merge import write_shard_manifest


def _shards(d, count=3, skip=()):
    for i in range(count):
        if i not in skip:
            shard = d / f"e.shard-{i:05d}-of-{count:05d}.jsonl"
            shard.write_text(f"[{i}]\n[{i}.5]\n")
            write_shard_manifest(shard, {"index": i, "count": count, "model": "m", "settings": "s", "inputs": {}}, 2)


def test_the_shards_are_joined_in_shard_order(cli, tmp_path):
    _shards(tmp_path)
    rc, out, err = cli("merge", str(tmp_path), f"out={tmp_path / 'all.jsonl'}")
    assert rc == 0, err
    assert (tmp_path / "all.jsonl").read_text() == "[0]\n[0.5]\n[1]\n[1.5]\n[2]\n[2.5]\n"
    assert f"merged 6 rows -> {tmp_path / 'all.jsonl'}" in out


def test_a_missing_shard_writes_nothing(cli, tmp_path):
    _shards(tmp_path, skip=(1,))
    rc, _, err = cli("merge", str(tmp_path))
    assert rc == 2 and "Traceback" not in err
    assert not (tmp_path / "e.jsonl").exists()


def test_usage_mistakes(cli, tmp_path):
    assert cli("merge")[0] == 2
    rc, _, err = cli("merge", str(tmp_path), "output=x.jsonl")
    assert rc == 2 and "the only override is out=FILE" in err and "usage: stpipe merge" in err


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
