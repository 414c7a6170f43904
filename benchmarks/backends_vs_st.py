"""stpipe's ONNX Runtime / OpenVINO exports of all-MiniLM-L6-v2 against sentence-transformers fp32 (torch).

    python benchmarks/backends_vs_st.py [--threads 2] [--repeats 3] [--short 1000] [--work DIR]

For each row of ``backend_rows.py`` (onnx fp32/int8, openvino fp32/int8; plus stpipe torch fp32 with
``--with-torch``): sentences/s on STS-B dev sentences (short texts) measured in the same run as
sentence-transformers fp32 (interleaved, alternating order, median of ``--repeats``), the ratio to
sentence-transformers, the largest cosine deviation (1 − cos over all of STS-B dev) from stpipe torch fp32
(``--with-torch``; else from sentence-transformers fp32, which stpipe equals within 1e-5), the largest absolute
difference, and STS-B dev Spearman (cosine) of each.
Exports go to ``--work`` (default: a temporary directory) and are reused when there.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backend_rows import BATCH_SIZE, backend_rows  # noqa: E402
from rows import Row  # noqa: E402


def stsb_dev() -> tuple[list[str], list[str], np.ndarray]:
    from stpipe.resources import dataset_file

    a, b, gold = [], [], []
    with open(dataset_file("stsb-dev"), newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                a.append(row[5])
                b.append(row[6])
                gold.append(float(row[4]))
    return a, b, np.asarray(gold)


def spearman(emb: np.ndarray, gold: np.ndarray) -> float:
    """STS-B dev Spearman (cosine) from the embeddings of sentence1 + sentence2, in that order."""
    from stpipe.experiments.metrics import spearman as rho

    ea, eb = emb[: len(gold)], emb[len(gold):]
    cos = (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
    return float(rho(cos, gold))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--short", type=int, default=1000)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--with-torch", action="store_true", help="also time stpipe's torch fp32 pipeline")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from sentence_transformers import SentenceTransformer

    import stpipe
    from stpipe.resources import bundled_model_dir

    model_dir = bundled_model_dir()
    work = args.work or Path(tempfile.mkdtemp(prefix="stpipe-bench-"))
    st_model = SentenceTransformer(str(model_dir), device="cpu")
    st_encode = lambda t: st_model.encode(t, batch_size=BATCH_SIZE, convert_to_numpy=True)  # noqa: E731
    torch_pipe = stpipe.load(model_dir, device="cpu")
    rows = [Row("torch", "fp32", lambda: lambda t: torch_pipe.encode(t, batch_size=BATCH_SIZE,
                                                                       convert_to_numpy=True), None)]
    rows = [*rows[:1 if args.with_torch else 0], *backend_rows(model_dir, work)]
    t0 = time.perf_counter()
    encoders = {(r.backend, r.precision): r.stpipe() for r in rows}
    print(f"exports + loads: {time.perf_counter() - t0:.0f} s (in {work})")
    a, b, gold = stsb_dev()
    texts = (a + b)[:args.short]
    calls = [("st", st_encode), *((f"{k[0]} {k[1]}", f) for k, f in encoders.items())]
    embs = {name: f(a + b) for name, f in calls}  # all of STS-B dev once (Spearman; also the warm-up)
    times: dict[str, list[float]] = {name: [] for name, _ in calls}
    for rep in range(args.repeats):  # interleaved, the order reversed every other repeat
        for name, f in calls if rep % 2 == 0 else calls[::-1]:
            t = time.perf_counter()
            f(texts)
            times[name].append(time.perf_counter() - t)
    tput = {k: len(texts) / statistics.median(v) for k, v in times.items()}
    print(f"model: all-MiniLM-L6-v2 (bundled); CPU: {cpu_name()} ({os.cpu_count()} logical); threads={args.threads}; "
          f"batch_size={BATCH_SIZE}; {len(texts)} STS-B dev sentences; repeats={args.repeats} (interleaved); "
          f"load average {os.getloadavg()[0]:.1f} (the machine is shared)")
    print(f"sentence-transformers fp32: {tput['st']:.1f} sentences/s, STS-B dev Spearman "
          f"{spearman(embs['st'], gold):.4f}\n")
    against = "stpipe" if args.with_torch else "ST"
    print(f"| backend | precision | stpipe sent/s | ST fp32 sent/s | ratio | max 1-cos vs {against} torch fp32 "
          "| max abs diff | STS-B dev Spearman |\n|---|---|---:|---:|---:|---:|---:|---:|")
    # the reference: stpipe torch fp32, or sentence-transformers fp32 (equal within 1e-5: tests/formats/test_st.py)
    ref = embs["torch fp32"] if args.with_torch else embs["st"]
    for name, _ in calls[1:]:
        got = embs[name]
        cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
        backend, precision = name.split()
        print(f"| {backend} | {precision} | {tput[name]:.1f} | {tput['st']:.1f} | {tput[name] / tput['st']:.2f} | "
              f"{1 - cos.min():.2e} | {np.abs(got - ref).max():.2e} | {spearman(got, gold):.4f} |")


if __name__ == "__main__":
    main()
