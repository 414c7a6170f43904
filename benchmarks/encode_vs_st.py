"""stpipe vs sentence-transformers 6.2 on all-MiniLM-L6-v2: a table of backend × precision × text length.

    python benchmarks/encode_vs_st.py [--threads 2] [--repeats 3] [--batch-size 32] [--short 3000] [--long 300]
                                      [--quick] [--out benchmarks/results/encode.md]

Each row (:class:`rows.Row`) is an stpipe configuration and its sentence-transformers counterpart in the same
configuration (``st=None``: ST's default, fp32). Per row and text set, the two encoders run interleaved in
alternating order in this one process (same sentences, thread count and batch size, after a warm-up); the table
gives medians. Columns: sentences/s of each, their ratio, the max cosine deviation (1 − cos) from stpipe fp32 and
the STS-B dev Spearman (cosine) of stpipe's embeddings (short set: STS-B dev sentence pairs). Rows: torch fp32,
bf16, fp16 and ``dtype: auto`` (against ST fp32), plus whatever ``benchmarks/backend_rows.py`` adds
(``backend_rows(model_dir, work) -> list[Row]``, see :func:`extra_rows`). Also timed: ``stpipe.build`` of the
bundled model against ``SentenceTransformer(dir)`` (import excluded), and ``import stpipe`` against ``import
sentence_transformers`` (fresh interpreters). Names the CPU and its matrix features; writes Markdown to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rows import Encode, Row  # noqa: E402

HERE = Path(__file__).resolve().parent
FEATURES = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "f16c")


# ---------------------------------------------------------------------------------------------- data
def _pairs(name: str) -> tuple[list[str], list[float]]:
    from stpipe.resources import dataset_file

    sentences, scores = [], []
    with open(dataset_file(name), newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                sentences += [row[5], row[6]]
                scores.append(float(row[4]))
    return sentences, scores


def datasets(n_short: int, n_long: int) -> tuple[dict[str, list[str]], list[float]]:
    """{label: texts} (STS-B dev sentences; ~120-word passages of STS-B train sentences, deterministic) and the
    dev scores of the short set's pairs."""
    dev, scores = _pairs("stsb-dev")
    n_short -= n_short % 2
    short = dev[:n_short]
    long, cur = [], []
    for s in _pairs("stsb-train")[0]:
        cur.append(s)
        if sum(len(c.split()) for c in cur) >= 120:
            long.append(" ".join(cur))
            cur = []
        if len(long) >= n_long:
            break
    return {f"short: {len(short)} STS-B dev sentences": short,
            f"long: {len(long)} ~120-word passages": long}, scores[:n_short // 2]


def spearman(emb: np.ndarray, scores: list[float]) -> float:
    from stpipe.experiments.metrics import spearman as rho

    a, b = emb[0::2], emb[1::2]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(rho(cos, scores))


def max_cos_dev(emb: np.ndarray, ref: np.ndarray) -> float:
    a, b = emb.astype(np.float64), ref.astype(np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(np.max(1.0 - cos))


# ---------------------------------------------------------------------------------------------- rows
def stpipe_encoder(dtype: str | None, batch_size: int, **encode_kwargs) -> Encode:
    import stpipe
    from stpipe.resources import conf_dir

    pipe = stpipe.build(conf_dir() / "model" / "minilm.yaml", device="cpu", dtype=dtype)
    return lambda texts: pipe.encode(texts, batch_size=batch_size, convert_to_numpy=True, **encode_kwargs)


def st_encoder(model_dir: Path, dtype: torch.dtype, batch_size: int) -> Encode:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    if dtype != torch.float32:
        model.to(dtype)
    return lambda texts: np.asarray(model.encode(texts, batch_size=batch_size, convert_to_numpy=True), np.float32)


def fp16_runs() -> str | None:
    """None when an fp16 linear layer runs on this CPU, else why not."""
    try:
        torch.nn.Linear(8, 8).half()(torch.ones(2, 8, dtype=torch.float16))
    except RuntimeError as exc:
        return str(exc).splitlines()[0]
    return None


def torch_rows(model_dir: Path, batch_size: int) -> list[Row]:
    from stpipe.hardware import resolve_dtype

    rows = [Row("torch", "fp32", lambda: stpipe_encoder("fp32", batch_size),
                lambda: st_encoder(model_dir, torch.float32, batch_size)),
            Row("torch", "bf16", lambda: stpipe_encoder("bf16", batch_size),
                lambda: st_encoder(model_dir, torch.bfloat16, batch_size), st_label="bf16")]
    why = fp16_runs()
    if why is None:
        rows.append(Row("torch", "fp16", lambda: stpipe_encoder("fp16", batch_size),
                        lambda: st_encoder(model_dir, torch.float16, batch_size), st_label="fp16"))
    else:
        rows.append(Row("torch", "fp16", None, None, note=f"fp16 does not run on this CPU: {why}"))  # type: ignore
    auto = resolve_dtype("auto", "cpu")
    rows.append(Row("torch", "auto", lambda: stpipe_encoder("auto", batch_size), None,
                    note=f"`dtype: auto` resolved to {auto} on this CPU"))
    return rows


def extra_rows(model_dir: Path, work: Path) -> list[Row]:
    """Rows of ``benchmarks/backend_rows.py`` (``backend_rows(model_dir, work) -> list[Row]``), if it exists."""
    path = HERE / "backend_rows.py"
    if not path.is_file():
        return []
    spec = importlib.util.spec_from_file_location("backend_rows", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return list(module.backend_rows(model_dir, work))


# ---------------------------------------------------------------------------------------------- measuring
def interleaved(a: Encode, b: Encode, texts: list[str], repeats: int) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Median seconds of ``a`` and ``b`` over ``repeats`` interleaved runs (alternating which goes first), after a
    warm-up of each; plus each one's embeddings."""
    a(texts[:64])
    b(texts[:64])
    times: dict[str, list[float]] = {"a": [], "b": []}
    out: dict[str, np.ndarray] = {}
    for r in range(repeats):
        for key in (("a", "b") if r % 2 == 0 else ("b", "a")):
            fn = a if key == "a" else b
            t0 = time.perf_counter()
            out[key] = fn(texts)
            times[key].append(time.perf_counter() - t0)
    return statistics.median(times["a"]), statistics.median(times["b"]), out["a"], out["b"]


def measure(row: Row, st_default: Encode, sets: dict[str, list[str]], refs: dict[str, np.ndarray],
            scores: list[float], repeats: int) -> list[dict]:
    """One table line per text set for ``row``; ``refs`` collects stpipe fp32's embeddings (the first row)."""
    if row.stpipe is None:
        return [{"row": row, "set": label, "skipped": True} for label in sets]
    ours = row.stpipe()
    theirs = row.st() if row.st is not None else st_default
    lines = []
    for label, texts in sets.items():
        t_sp, t_st, e_sp, e_st = interleaved(ours, theirs, texts, repeats)
        refs.setdefault(label, e_sp)
        line = {"row": row, "set": label, "sp": len(texts) / t_sp, "st": len(texts) / t_st,
                "dev": max_cos_dev(e_sp, refs[label]), "st_dev": max_cos_dev(e_st, refs[label])}
        if label.startswith("short"):
            line["rho"], line["st_rho"] = spearman(e_sp, scores), spearman(e_st, scores)
        lines.append(line)
        print(f"  {row.backend} {row.precision} | {label}: stpipe {line['sp']:.1f}/s, ST {line['st']:.1f}/s, "
              f"ratio {line['sp'] / line['st']:.3f}", flush=True)
    return lines


def time_build(model_dir: Path, repeats: int) -> tuple[float, float]:
    """Median seconds of ``stpipe.build`` (bundled definition: validation + instantiation + weights) and of
    ``SentenceTransformer(dir)``, interleaved; both libraries imported beforehand."""
    from sentence_transformers import SentenceTransformer

    import stpipe
    from stpipe.resources import conf_dir

    a = lambda: stpipe.build(conf_dir() / "model" / "minilm.yaml", device="cpu")  # noqa: E731
    b = lambda: SentenceTransformer(str(model_dir), device="cpu")  # noqa: E731
    a(), b()
    ta, tb = [], []
    for r in range(repeats):
        for fn, acc in ((a, ta), (b, tb)) if r % 2 == 0 else ((b, tb), (a, ta)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def time_imports(repeats: int) -> dict[str, float]:
    """Median wall seconds of a fresh interpreter importing each (minus a bare interpreter's start)."""
    codes = {"none": "pass", "import stpipe": "import stpipe",
             "import stpipe.pipeline (torch)": "import stpipe.pipeline",
             "import sentence_transformers": "import sentence_transformers"}
    times: dict[str, list[float]] = {k: [] for k in codes}
    for _ in range(repeats):
        for key, code in codes.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
            times[key].append(time.perf_counter() - t0)
    base = statistics.median(times.pop("none"))
    return {k: statistics.median(v) - base for k, v in times.items()}


# ---------------------------------------------------------------------------------------------- the report
def cpu_description() -> str:
    from stpipe.hardware import cpu_flags

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    flags = cpu_flags()
    have = [f for f in FEATURES if f in flags]
    missing = [f for f in FEATURES if f not in flags]
    return (f"{name}, {os.cpu_count()} CPUs; features: {', '.join(have) or 'none of interest'}"
            f" (absent: {', '.join(missing) or 'none'})")


def markdown(lines: list[dict], header: list[str], footer: list[str]) -> str:
    out = [*header, "",
           "| backend | precision | texts | stpipe sent/s | ST sent/s (ST config) | ratio | max 1−cos vs stpipe fp32 "
           "| STS-B dev Spearman stpipe / ST |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for ln in lines:
        row = ln["row"]
        if ln.get("skipped"):
            out.append(f"| {row.backend} | {row.precision} | {ln['set']} | – | – | – | – | not run (see below) |")
            continue
        rho = f"{ln['rho']:.4f} / {ln['st_rho']:.4f}" if "rho" in ln else ""
        out.append(f"| {row.backend} | {row.precision} | {ln['set']} | {ln['sp']:.1f} | {ln['st']:.1f} "
                   f"({row.st_label}) | {ln['sp'] / ln['st']:.3f} | {ln['dev']:.1e} | {rho} |")
    notes = sorted({ln["row"].note for ln in lines if ln["row"].note})
    return "\n".join([*out, "", *[f"- {n}" for n in notes], *footer]) + "\n"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (the `threads` run setting)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--short", type=int, default=3000, help="STS-B dev sentences (3000 = all 1500 pairs)")
    ap.add_argument("--long", type=int, default=300, help="~120-word passages")
    ap.add_argument("--quick", action="store_true", help="a fast check while developing: 400 sentences, "
                    "40 passages, 2 repeats")
    ap.add_argument("--rows", default=None, help="comma-separated backend:precision to run (default: all)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "encode.md")
    args = ap.parse_args()
    if args.quick:
        args.short, args.long, args.repeats = min(args.short, 400), min(args.long, 40), min(args.repeats, 2)
    return args


def main() -> None:
    args = parse_args()
    import stpipe
    from stpipe.commands.common import apply_threads
    from stpipe.resources import bundled_model_dir

    threads = apply_threads(args.threads)
    model_dir = bundled_model_dir()
    sets, scores = datasets(args.short, args.long)
    with tempfile.TemporaryDirectory(prefix="stpipe-bench-") as work:
        rows = torch_rows(model_dir, args.batch_size) + extra_rows(model_dir, Path(work))
        if args.rows:
            wanted = set(args.rows.split(","))
            rows = [r for r in rows if f"{r.backend}:{r.precision}" in wanted or (r.backend, r.precision) ==
                    ("torch", "fp32")]
        st_default = st_encoder(model_dir, torch.float32, args.batch_size)
        refs: dict[str, np.ndarray] = {}
        lines = [ln for row in rows for ln in measure(row, st_default, sets, refs, scores, args.repeats)]
    t_build, t_load = time_build(model_dir, max(3, args.repeats))
    imports = time_imports(max(3, args.repeats))
    import sentence_transformers
    import transformers

    header = ["# stpipe vs sentence-transformers: encode throughput", "",
              f"all-MiniLM-L6-v2 (bundled), CPU, torch {torch.__version__}, transformers {transformers.__version__}, "
              f"sentence-transformers {sentence_transformers.__version__}, stpipe {stpipe.__version__}; "
              f"{threads} torch threads, batch_size {args.batch_size}, median of {args.repeats} interleaved runs "
              "(alternating order) after a warm-up each.", "", f"CPU: {cpu_description()}."]
    footer = ["", f"Build and load (import excluded, median of {max(3, args.repeats)}): `stpipe.build` of the bundled "
              f"definition (validation + instantiation + weights) {t_build:.2f} s, `SentenceTransformer(dir)` "
              f"{t_load:.2f} s — ratio {t_build / t_load:.2f}.", "",
              "Import (fresh interpreter, minus a bare start): " +
              ", ".join(f"`{k}` {v:.2f} s" for k, v in imports.items()) + "."]
    text = markdown(lines, header, footer)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
