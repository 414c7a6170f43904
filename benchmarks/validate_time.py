"""How long ``stpipe validate model=minilm`` takes (target: under 0.5 s), and whether it imported torch.

    python benchmarks/validate_time.py [--repeats 7] [--model minilm]

Two figures: *cold* — a fresh ``python -m stpipe validate model=…`` process, start-up and imports included
(the median of ``--repeats`` runs; what a user waits for), and *warm* — ``stpipe.cli.main(["validate", …])``
called again in this process after one run (the median; the validation work itself, imports already paid).
The cold run also reports which of torch / transformers ended up imported (the answer should be none).
Times are printed, never asserted (timing is no unit test).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_COLD = """
import contextlib, io, json, sys, time
t = time.perf_counter()
from stpipe.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    rc = main(["validate", "model={model}"])
print(json.dumps({{"rc": rc, "seconds": time.perf_counter() - t,
                  "heavy": [m for m in ("torch", "transformers") if m in sys.modules]}}))
"""


def cold(model: str, repeats: int) -> tuple[list[float], list[float], list[str]]:
    """(process wall times, in-process times from the first import, heavy modules imported)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    walls, inner, heavy = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _COLD.format(model=model)], capture_output=True, text=True,
                             env=env, cwd=REPO, check=True)
        walls.append(time.perf_counter() - t)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["rc"] != 0:
            raise SystemExit(f"stpipe validate model={model} failed: {out.stderr}")
        inner.append(result["seconds"])
        heavy = result["heavy"]
    return walls, inner, heavy


def warm(model: str, repeats: int) -> list[float]:
    sys.path.insert(0, str(REPO))
    from stpipe.cli import main

    times = []
    for _ in range(repeats + 1):  # the first run pays the imports
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            main(["validate", f"model={model}"])
        times.append(time.perf_counter() - t)
    return times[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--model", default="minilm")
    args = ap.parse_args()
    walls, inner, heavy = cold(args.model, args.repeats)
    hot = warm(args.model, args.repeats)
    print(f"stpipe validate model={args.model}  ({args.repeats} runs each, medians)")
    print(f"  cold, whole process (python start-up included): {statistics.median(walls):.3f} s")
    print(f"  cold, from `import stpipe.cli` to the verdict:   {statistics.median(inner):.3f} s   (target < 0.5 s)")
    print(f"  warm, in-process (imports done):                 {statistics.median(hot):.3f} s")
    print(f"  heavy modules imported by validate: {', '.join(heavy) if heavy else 'none'}")


if __name__ == "__main__":
    main()
