"""Every deployment path of all-MiniLM-L6-v2 against sentence-transformers fp32 (torch), in ONE run.

    python benchmarks/deploy_vs_st.py [--threads 2] [--repeats 3] [--short 1000] [--pairs 1500] [--work DIR]
                                      [--only a,b]

Rows (same STS-B dev sentences, same batch size 32, same threads, timed interleaved in alternating order, median
of ``--repeats``; all of STS-B dev is encoded once first — the warm-up, and the embeddings for the quality
columns): stpipe torch fp32; stpipe's whole-pipeline exports — ONNX fp32, ONNX optimised fp32 (``optimize=O2``),
ONNX dynamic int8 (``quantize=int8``, on the O2 graph), ONNX static int8 (``quantize=int8-static``, O2 graph),
OpenVINO fp32 / dynamic int8 / static int8 (NNCF); sentence-transformers' own ONNX / OpenVINO backends and
fastembed on the same model where they install (else the row says why). Printed: the CPU and its ISA features,
texts/s, the ratio to sentence-transformers fp32, the largest |difference| and 1 − cos from stpipe torch fp32, and
STS-B dev Spearman (cosine) of each row. Exports are made in ``--work`` (reused when there); on 2 cores the whole
run takes ~6–10 minutes. ``--only`` keeps the named rows (plus the baseline), e.g. ``--only onnx-int8-static``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends_vs_st import cpu_name, spearman, stsb_dev  # noqa: E402

BATCH = 32
#: row name → (format, quantize, optimize) of stpipe's export
EXPORTS = {"onnx-fp32": ("onnx", None, None), "onnx-O2-fp32": ("onnx", None, "O2"),
           "onnx-int8": ("onnx", "int8", "O2"), "onnx-int8-static": ("onnx", "int8-static", "O2"),
           "openvino-fp32": ("openvino", None, None), "openvino-int8": ("openvino", "int8", None),
           "openvino-int8-static": ("openvino", "int8-static", None)}
FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
Encode = Callable[[list[str]], np.ndarray]


def cpu_features() -> str:
    try:
        flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")).split()
    except (OSError, StopIteration):
        return "features unknown"
    return ", ".join(f if f in flags else f"no {f}" for f in FEATURES)


def calibration_texts(n: int = 300) -> list[str]:
    """The default calibration of ``stpipe export … quantize=int8-static``: distinct STS-B train sentences."""
    from stpipe.commands.export_settings import calibration_texts as texts

    return texts({"calibration": {"data": None, "samples": n}})


def stpipe_export(pipe: object, work: Path, name: str, threads: int) -> Encode:
    import stpipe
    from stpipe.formats.exported import MANIFEST, export

    fmt, quantize, optimize = EXPORTS[name]
    out = work / name
    if not (out / MANIFEST).is_file():
        t = time.perf_counter()
        export(pipe, out, fmt, quantize=quantize, optimize=optimize,
               calibration=calibration_texts() if quantize == "int8-static" else None)
        print(f"  exported {name} in {time.perf_counter() - t:.0f} s", flush=True)
    loaded = stpipe.load(out)
    return lambda texts: loaded.encode(texts, batch_size=BATCH, convert_to_numpy=True)


def st_backend(model_dir: Path, work: Path, backend: str) -> Encode:
    """sentence-transformers' own backend (it needs optimum-onnx / optimum-intel)."""
    import shutil

    from sentence_transformers import SentenceTransformer

    copy = work / f"st-{backend}"
    if not copy.is_dir():  # ST writes its graph into the model directory: work on a copy
        shutil.copytree(model_dir, copy)
    model = SentenceTransformer(str(copy), device="cpu", backend=backend)
    return lambda texts: model.encode(texts, batch_size=BATCH, convert_to_numpy=True)


def fastembed_row(pipe: object, work: Path, threads: int) -> Encode:
    """fastembed on the same model: stpipe's ONNX graph of the Transformer alone, fastembed's own mean pooling
    and normalisation, loaded from a local directory (``specific_model_path``; fastembed cannot download here)."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    from stpipe.runtimes.graph_export import export_hf_model

    folder = work / "fastembed"
    graph = folder / "onnx" / "model.onnx"
    transformer = pipe[0]  # type: ignore[index]
    if not graph.is_file():
        graph.parent.mkdir(parents=True, exist_ok=True)
        export_hf_model(transformer.auto_model, transformer.tokenizer, graph)
        transformer.tokenizer.save_pretrained(str(folder))
        transformer.auto_model.config.save_pretrained(str(folder))
    name = "stpipe-local/all-MiniLM-L6-v2"
    try:
        TextEmbedding.add_custom_model(name, pooling=PoolingType.MEAN, normalization=True,
                                       sources=ModelSource(hf=name), dim=384, model_file="onnx/model.onnx")
    except ValueError:
        pass  # registered by an earlier call
    model = TextEmbedding(name, specific_model_path=str(folder), threads=threads)
    return lambda texts: np.stack(list(model.embed(texts, batch_size=BATCH)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--short", type=int, default=1000)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--pairs", type=int, default=1500, help="STS-B dev pairs for the quality columns (all: 1500)")
    ap.add_argument("--only", default="", help="comma-separated row names to keep (the baselines always run)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from sentence_transformers import SentenceTransformer

    import stpipe
    from stpipe.resources import bundled_model_dir

    model_dir = bundled_model_dir()
    work = args.work or Path(tempfile.mkdtemp(prefix="stpipe-deploy-"))
    work.mkdir(parents=True, exist_ok=True)
    st_model = SentenceTransformer(str(model_dir), device="cpu")
    pipe = stpipe.load(model_dir, device="cpu")
    factories: dict[str, Callable[[], Encode]] = {
        "st-torch-fp32": lambda: lambda t: st_model.encode(t, batch_size=BATCH, convert_to_numpy=True),
        "stpipe-torch-fp32": lambda: lambda t: pipe.encode(t, batch_size=BATCH, convert_to_numpy=True),
        **{name: (lambda n=name: stpipe_export(pipe, work, n, args.threads)) for name in EXPORTS},
        "st-onnx-fp32": lambda: st_backend(model_dir, work, "onnx"),
        "st-openvino-fp32": lambda: st_backend(model_dir, work, "openvino"),
        "fastembed-fp32": lambda: fastembed_row(pipe, work, args.threads),
    }
    keep = {s for s in args.only.split(",") if s}
    unknown = keep - set(factories)
    if unknown:
        ap.error(f"unknown rows {sorted(unknown)}; rows: {', '.join(factories)}")
    t0 = time.perf_counter()
    encoders: dict[str, Encode] = {}
    missing: dict[str, str] = {}
    for name, make in factories.items():
        if keep and name not in keep and name not in ("st-torch-fp32", "stpipe-torch-fp32"):
            continue
        try:
            encoders[name] = make()
        except Exception as exc:  # a row that cannot run here says why and the others still run
            missing[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    print(f"exports + loads: {time.perf_counter() - t0:.0f} s (in {work})", flush=True)
    a, b, gold = stsb_dev()
    a, b, gold = a[: args.pairs], b[: args.pairs], gold[: args.pairs]
    texts = (stsb_dev()[0] + stsb_dev()[1])[: args.short]
    embs = {name: f(a + b) for name, f in encoders.items()}  # all of STS-B dev once: warm-up and quality
    times: dict[str, list[float]] = {name: [] for name in encoders}
    calls = list(encoders.items())
    for rep in range(args.repeats):  # interleaved, the order reversed every other repeat
        for name, f in calls if rep % 2 == 0 else calls[::-1]:
            t = time.perf_counter()
            f(texts)
            times[name].append(time.perf_counter() - t)
    tput = {k: len(texts) / statistics.median(v) for k, v in times.items()}
    print(f"model: all-MiniLM-L6-v2 (bundled); CPU: {cpu_name()} ({os.cpu_count()} logical; {cpu_features()}); "
          f"threads={args.threads}; batch_size={BATCH}; {len(texts)} STS-B dev sentences; repeats={args.repeats} "
          f"(interleaved); load average {os.getloadavg()[0]:.1f}\n")
    ref, base = embs["stpipe-torch-fp32"], tput["st-torch-fp32"]
    print("| row | texts/s | × ST fp32 | max abs diff vs stpipe torch fp32 | max 1−cos | STS-B dev Spearman |\n"
          "|---|---:|---:|---:|---:|---:|")
    for name in factories:
        if name in missing:
            print(f"| {name} | — | — | — | — | not run: {missing[name]} |")
        if name not in encoders:
            continue
        got = embs[name]
        cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
        print(f"| {name} | {tput[name]:.1f} | {tput[name] / base:.2f} | {np.abs(got - ref).max():.2e} | "
              f"{1 - cos.min():.2e} | {spearman(got, gold):.4f} |")
    for fp32, int8s in (("onnx-fp32", ("onnx-int8", "onnx-int8-static")),
                        ("openvino-fp32", ("openvino-int8", "openvino-int8-static"))):
        for q in int8s:
            if fp32 in tput and q in tput:
                print(f"{q} / {fp32}: {tput[q] / tput[fp32]:.2f}×")
    if "fastembed-fp32" in tput and "onnx-O2-fp32" in tput:
        print(f"onnx-O2-fp32 / fastembed-fp32: {tput['onnx-O2-fp32'] / tput['fastembed-fp32']:.2f}×")


if __name__ == "__main__":
    main()
