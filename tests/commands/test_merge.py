"""``stpipe merge DIR [out=FILE]`` (:mod:`stpipe.commands.merge`): the shards of ``stpipe encode shard.count=N``
joined in shard order; every mistake is exit 2 with the usage line."""

from __future__ import annotations


def _shards(d, count=3, skip=()):
    for i in range(count):
        if i not in skip:
            (d / f"e.shard-{i:05d}-of-{count:05d}.jsonl").write_text(f"[{i}]\n[{i}.5]\n")


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
