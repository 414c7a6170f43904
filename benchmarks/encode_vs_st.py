"""stpipe vs sentence-transformers on all-MiniLM-L6-v2: same sentences, same thread count, same batch size,
interleaved runs in one process. Prints sentences/s for each and the ratio stpipe / sentence-transformers.

    python benchmarks/encode_vs_st.py [--threads 2] [--repeats 5] [--batch-size 32] [--short 2000] [--long 300]

Sets: STS-B dev sentences (short, ~10 words) and a long-text set built from STS-B train sentences joined into
~120-word passages (truncated by the model at 256 tokens). Data: the STS-B splits shipped with stpipe
(``stpipe.resources.dataset_file``).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402


def _sentences(name: str) -> list[str]:
    from stpipe.resources import dataset_file

    out: list[str] = []
    with open(dataset_file(name), newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                out.extend([row[5], row[6]])
    return out


def datasets(n_short: int, n_long: int) -> dict[str, list[str]]:
    short = _sentences("stsb-dev")[:n_short]
    train = _sentences("stsb-train")
    long, cur = [], []
    for s in train:
        cur.append(s)
        if sum(len(c.split()) for c in cur) >= 120:
            long.append(" ".join(cur))
            cur = []
        if len(long) >= n_long:
            break
    return {f"short ({len(short)} STS-B dev sentences)": short, f"long ({len(long)} ~120-word passages)": long}


def time_encode(encode, texts: list[str], batch_size: int) -> float:
    t0 = time.perf_counter()
    encode(texts, batch_size=batch_size)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--short", type=int, default=2000)
    ap.add_argument("--long", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import numpy as np
    from sentence_transformers import SentenceTransformer

    import stpipe
    from stpipe.resources import bundled_model_dir, conf_dir

    model_dir = bundled_model_dir()
    st = SentenceTransformer(str(model_dir), device="cpu")
    sp = stpipe.build(conf_dir() / "model" / "minilm.yaml", device="cpu")
    print(f"model: all-MiniLM-L6-v2 (bundled), fp32, cpu, torch threads={torch.get_num_threads()}, "
          f"batch_size={args.batch_size}, repeats={args.repeats} (interleaved, after one warm-up each)")
    print(f"torch {torch.__version__}; stpipe {stpipe.__version__}")

    rows = []
    for label, texts in datasets(args.short, args.long).items():
        a = st.encode(texts[:64], batch_size=args.batch_size, convert_to_numpy=True)
        b = sp.encode(texts[:64], batch_size=args.batch_size, convert_to_numpy=True)
        diff = float(np.abs(a - b).max())
        times: dict[str, list[float]] = {"sentence-transformers": [], "stpipe": []}
        for _ in range(args.repeats):
            times["sentence-transformers"].append(time_encode(st.encode, texts, args.batch_size))
            times["stpipe"].append(time_encode(sp.encode, texts, args.batch_size))
        tput = {k: len(texts) / statistics.median(v) for k, v in times.items()}
        ratio = tput["stpipe"] / tput["sentence-transformers"]
        rows.append((label, tput["sentence-transformers"], tput["stpipe"], ratio, diff))

    print(f"\n{'set':<40} {'ST sent/s':>10} {'stpipe sent/s':>14} {'ratio':>7} {'max|diff|':>10}")
    for label, a, b, r, d in rows:
        print(f"{label:<40} {a:>10.1f} {b:>14.1f} {r:>7.3f} {d:>10.2e}")


if __name__ == "__main__":
    main()
