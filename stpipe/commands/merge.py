"""``stpipe merge DIR [out=FILE]``: join the shards of ``stpipe encode … shard.index=i shard.count=N``.

Finds ``NAME.shard-0000i-of-0000N.npy|.jsonl|.parquet`` under DIR (a sweep's job directories included), checks that
each of the N shards is there exactly once, and joins them in shard order — the input order, since shards are
contiguous slices — into ``DIR/NAME.EXT`` (or ``out=FILE``), streamed and atomically (temporary name, rename).
Reads only the shard files: imports no torch.
"""

from __future__ import annotations

from stpipe.commands.common import out_override
from stpipe.errors import CommandError

USAGE = "usage: stpipe merge DIR [out=FILE]  (DIR: where the shard files of `stpipe encode shard.count=N` are)"


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    from stpipe.corpus.merge import merge_dir

    if model is None:
        raise CommandError(USAGE)
    if flags:
        raise CommandError(f"no options here (got {' '.join(sorted(flags))}); {USAGE}")
    out = out_override(overrides, USAGE, "FILE")
    for target, rows in merge_dir(model, out):
        print(f"merged {rows} rows -> {target}")
    return 0
