"""Load benchmark of ``stpipe serve``: dynamic batching against a naive server that calls ``encode`` once per request.

Both servers run as subprocesses on 127.0.0.1 with the same model and threads; this process is the load generator:
``C`` concurrent clients (1, 8, 32) each send one request after another (``--texts`` sentences of STS-B dev, shipped
with stpipe) for ``--duration`` seconds. Printed per server and concurrency: requests/s, sentences/s, p50 and p99
latency; then a direct ``Pipeline.encode`` of one request in this process (the latency floor) and the two target
ratios: batching ≥ 3× the naive throughput at 32 clients, p99 at 1 client within 1.2× of the direct call.
Where ``infinity-emb`` is installed its row would be measured the same way; here it is reported as not installed.

    python benchmarks/serve_load.py --duration 20 --threads 2        # ≈ 3 × 2 × 20 s + model loads ≈ 3 minutes

Timings mean something only on a quiet machine (the client shares the CPUs with the server: say so with the result).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 8, 32)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sentences(n: int = 2000) -> list[str]:
    from stpipe.resources import dataset_file

    with open(dataset_file("stsb-dev"), encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    out = [s for r in rows for s in r[5:7] if s]
    return out[:n]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def naive_server(model: str, port: int, threads: int | None) -> None:
    """The naive server: one ``encode`` call per request, on the event loop (``--naive-server``)."""
    import torch
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    import stpipe

    if threads:
        torch.set_num_threads(threads)
    path = REPO / "conf" / "model" / f"{model}.yaml"
    pipe = stpipe.build(path if path.is_file() else model, device="cpu")

    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        emb = pipe.encode(texts)
        return JSONResponse({"object": "list", "data": [{"object": "embedding", "index": i, "embedding": e.tolist()}
                                                        for i, e in enumerate(emb)], "model": model})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"]), Route("/health", health)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start(kind: str, model: str, threads: int | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    if kind == "batching":
        cmd = [sys.executable, "-m", "stpipe", "serve", f"model={model}", f"port={port}", "device=cpu",
               "serve.access_log=false", f"serve.name={model}", "batch_size=256"]
        if threads:
            cmd.append(f"threads={threads}")
    else:
        cmd = [sys.executable, __file__, "--naive-server", "--model", model, "--port", str(port)]
        if threads:
            cmd += ["--threads", str(threads)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the {kind} server stopped: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the {kind} server did not become ready")


async def load(url: str, model: str, texts: list[str], per_request: int, clients: int, duration: float
               ) -> tuple[int, list[float]]:
    import httpx

    latencies: list[float] = []
    stop = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        async def worker(w: int) -> None:
            i = w
            while time.perf_counter() < stop:
                batch = [texts[(i * per_request + j) % len(texts)] for j in range(per_request)]
                t0 = time.perf_counter()
                r = await client.post("/v1/embeddings", json={"model": model, "input": batch,
                                                              "encoding_format": "float"})
                r.raise_for_status()
                latencies.append(time.perf_counter() - t0)
                i += clients

        await asyncio.gather(*(worker(w) for w in range(clients)))
    return len(latencies), latencies


def direct(model: str, texts: list[str], per_request: int, threads: int | None, n: int = 200) -> list[float]:
    import torch

    import stpipe

    if threads:
        torch.set_num_threads(threads)
    path = REPO / "conf" / "model" / f"{model}.yaml"
    pipe = stpipe.build(path if path.is_file() else model, device="cpu")
    pipe.encode(texts[:per_request])
    out = []
    for i in range(n):
        batch = [texts[(i * per_request + j) % len(texts)] for j in range(per_request)]
        t0 = time.perf_counter()
        pipe.encode(batch)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="minilm", help="a conf/model name (default minilm, bundled)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per (server, concurrency)")
    ap.add_argument("--texts", type=int, default=1, help="sentences per request")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the servers and the direct call")
    ap.add_argument("--naive-server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.naive_server:
        naive_server(args.model, args.port, args.threads)
        return
    texts = sentences()
    print(f"CPU: {cpu_name()}; {os.cpu_count()} logical CPUs; server threads: {args.threads or 'torch default'}; "
          f"model {args.model}; {args.texts} sentence(s) per request; {args.duration:g} s per row")
    floor = np.array(direct(args.model, texts, args.texts, args.threads)) * 1000
    print(f"direct Pipeline.encode of one request: p50 {np.percentile(floor, 50):.2f} ms, p99 "
          f"{np.percentile(floor, 99):.2f} ms")
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    print(f"{'server':<10} {'clients':>7} {'req/s':>9} {'sent/s':>9} {'p50 ms':>9} {'p99 ms':>9}")
    for kind in ("batching", "naive"):
        proc, url = start(kind, args.model, args.threads)
        try:
            for c in CONCURRENCY:
                asyncio.run(load(url, args.model, texts, args.texts, c, min(2.0, args.duration / 5)))  # warm-up
                n, lat = asyncio.run(load(url, args.model, texts, args.texts, c, args.duration))
                ms = np.array(lat) * 1000
                rps = n / args.duration
                results[(kind, c)] = (rps, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)))
                print(f"{kind:<10} {c:>7} {rps:>9.1f} {rps * args.texts:>9.1f} {results[(kind, c)][1]:>9.2f} "
                      f"{results[(kind, c)][2]:>9.2f}", flush=True)
        finally:
            proc.terminate()
            proc.wait(60)
    try:
        import infinity_emb  # noqa: F401
        print("infinity-emb is installed, but its row is not implemented in this script yet")
    except ImportError:
        print("infinity: not installed (pip install infinity-emb) — row skipped")
    ratio = results[("batching", 32)][0] / results[("naive", 32)][0]
    p99 = results[("batching", 1)][2] / float(np.percentile(floor, 99))
    print(f"throughput at 32 clients, batching / naive: {ratio:.2f}x (target >= 3x)")
    print(f"p99 at 1 client, batching server / direct encode: {p99:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
