"""Corpus-scale ``stpipe encode``: peak memory on a 1,000,000-line file, and the throughput of workers / Ray.

    python benchmarks/corpus_encode.py [--lines 1000000] [--minilm-lines 2000] [--skip-memory] [--skip-throughput]

*Memory*: a generated ``--lines`` text file is encoded by a small static-embedding stand-in (``StaticEmbedding``
with seeded random 64-d rows over the bundled MiniLM's WordPiece tokenizer, saved to a temporary directory) with
``stpipe encode … output=big.npy`` in a subprocess; its peak RSS is ``resource.getrusage(RUSAGE_CHILDREN)``
after it ends (the benchmark process itself is not counted). The ``.npy`` is checked: shape ``(lines, 64)``, and
its first and last 2,000 rows equal the same lines encoded in memory. Target: peak RSS < 1.5 GB.

*Throughput* (the bundled MiniLM, ``--minilm-lines`` STS-B sentences): the single-process run, ``workers=2`` and
``engine=ray workers=2``, each a fresh ``stpipe encode`` subprocess; sentences/s over the encode time that stpipe
prints (model building and Ray start-up included, the interpreter's start-up not) and over the process wall time.
Times are printed, never asserted; on a loaded or small machine the parallel runs may well be slower.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
WORDS = ("the a of to in and is was for on with cat dog bird house car tree city paris france weather rain what "
         "where capital photo query document model sentence good big red blue run walk man woman music book "
         "embedding vector search index corpus passage retrieval").split()


def stpipe(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "RAY_USAGE_STATS_ENABLED": "0"}
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "stpipe", *args], capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"stpipe {' '.join(args)} failed:\n{r.stderr}")
    return r, wall


def static_model(path: Path) -> Path:
    import torch

    from stpipe.modules.static import StaticEmbedding
    from stpipe.pipeline import Pipeline
    from stpipe.resources import bundled_model_dir

    torch.manual_seed(0)
    Pipeline([StaticEmbedding(str(bundled_model_dir()), embedding_dim=64)], name="static-standin",
             device="cpu").save(path)
    return path


def write_corpus(path: Path, lines: int) -> list[str]:
    rng = random.Random(0)
    sample: list[str] = []
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(lines):
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 20)))
            fh.write(line + "\n")
            if i < 2000 or i >= lines - 2000:
                sample.append(line)
    return sample


def memory(tmp: Path, lines: int) -> None:
    import numpy as np

    from stpipe.builder import build

    model = static_model(tmp / "static")
    corpus = tmp / "big.txt"
    sample = write_corpus(corpus, lines)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r, wall = stpipe("encode", str(model), f"inputs={corpus}", f"output={tmp / 'big.npy'}", "chunk_size=20000",
                     "batch_size=1000")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    arr = np.load(tmp / "big.npy", mmap_mode="r")
    ref = build(str(model), device="cpu").encode(sample, batch_size=1000)
    head, tail = min(2000, lines), min(2000, max(lines - 2000, 0))
    same = np.abs(np.concatenate([arr[:head], arr[lines - tail:]]) - ref).max() if tail else \
        np.abs(arr[:head] - ref[:head]).max()
    print(f"memory: {lines:,} lines, size {corpus.stat().st_size / 2**20:.0f} MiB -> {arr.shape} {arr.dtype}; "
          f"{r.stdout.strip()}")
    print(f"memory: peak RSS of the stpipe process {peak_kib / 2**20:.2f} GiB (target < 1.5 GB; children before: "
          f"{before / 2**20:.2f} GiB), wall {wall:.0f}s, {lines / wall:,.0f} sentences/s; max |streamed - "
          f"in-memory| over the first/last rows {same:.2e}")


def throughput(tmp: Path, n: int) -> None:
    from stpipe.resources import dataset_file

    texts: list[str] = []
    for line in dataset_file("stsb-dev").read_text(encoding="utf-8").splitlines():
        texts += line.split("\t")[5:7]
    texts = [t for t in texts if t.strip()][:n]
    (tmp / "sts.txt").write_text("\n".join(texts) + "\n")
    runs = {"single process": [], "workers=2": ["workers=2"],
            "engine=ray workers=2": ["engine=ray", "workers=2"]}
    base: float | None = None
    for name, extra in runs.items():
        r, wall = stpipe("encode", "model=minilm", f"inputs={tmp / 'sts.txt'}", f"output={tmp / 'm.npy'}",
                         "chunk_size=250", *extra)
        seconds = float(re.search(r" in ([0-9.]+)s", r.stdout).group(1))
        rate = len(texts) / seconds
        base = base or rate
        print(f"throughput: {name:22s} {len(texts)} sentences in {seconds:6.1f}s = {rate:7.1f}/s "
              f"({rate / base:.2f}x single), process wall {wall:.1f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--minilm-lines", type=int, default=2000)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as d:
        if not args.skip_memory:
            memory(Path(d), args.lines)
        if not args.skip_throughput:
            throughput(Path(d), args.minilm_lines)


if __name__ == "__main__":
    main()
