"""How long ``stpipe validate model=minilm`` takes (target: under 0.5 s), and whether it imported torch.

    python benchmarks/validate_time.py [--repeats 7] [--model minilm] [--against OTHER_CHECKOUT]

Two figures: *cold* — a fresh ``python -c 'from stpipe.cli import main; main(["validate", …])'`` process,
start-up and imports included (the median of ``--repeats`` runs; what a user waits for), and *warm* —
``stpipe.cli.main(["validate", …])`` called again in this process after one run (the median; the validation work
itself, imports already paid). Each cold figure comes with the CPU time (user + sys) it took: on a loaded machine
the wall time waits for other processes, the CPU time much less. ``--against DIR`` measures another checkout of
stpipe too (e.g. the commit before a change), its runs interleaved with this one's so both see the same load.
Cold runs read compiled bytecode as an installed package does (``pip install`` compiles it, and Python caches it on
the first run): the children get ``PYTHONPYCACHEPREFIX`` (a temporary folder, filled by one run first) and no
``PYTHONDONTWRITEBYTECODE``. When this shell sets ``PYTHONDONTWRITEBYTECODE`` (the shared machine does), a second
figure shows a run as this shell would do it, every stpipe module compiled from source (0.1–0.2 s more in our runs).
The cold run also reports which of torch / transformers ended up imported (the answer should be none).
Times are printed, never asserted (timing is no unit test).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_COLD = """
import contextlib, io, json, os, sys, time
sys.path.insert(0, {repo!r})
t, c = time.perf_counter(), sum(os.times()[:2])
from stpipe.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    rc = main(["validate", "model={model}"])
print(json.dumps({{"rc": rc, "seconds": time.perf_counter() - t, "cpu": sum(os.times()[:2]) - c,
                  "stpipe": sys.modules["stpipe"].__file__,
                  "heavy": [m for m in ("torch", "transformers") if m in sys.modules]}}))
"""


@dataclass
class Cold:
    """The cold runs of one checkout: per run, the process's wall and CPU time, and the same from the first import
    of stpipe.cli to the verdict."""

    repo: Path
    pycache: str | None  # PYTHONPYCACHEPREFIX for the children (bytecode cached), None: this shell's settings
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    inner: list[float] = field(default_factory=list)
    inner_cpus: list[float] = field(default_factory=list)
    heavy: list[str] = field(default_factory=list)

    def run_once(self, model: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(self.repo),
                                                                           os.environ.get("PYTHONPATH")]))}
        if self.pycache is not None:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = self.pycache
        before, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _COLD.format(model=model, repo=str(self.repo))],
                             capture_output=True, text=True, env=env, cwd=self.repo, check=True)
        self.walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["rc"] != 0:
            raise SystemExit(f"stpipe validate model={model} failed: {out.stderr}")
        if not result["stpipe"].startswith(str(self.repo)):
            raise SystemExit(f"{self.repo}: imported stpipe from {result['stpipe']}")
        self.inner.append(result["seconds"])
        self.inner_cpus.append(result["cpu"])
        self.heavy = result["heavy"]

    def report(self) -> list[str]:
        med = statistics.median
        how = ("bytecode cached" if self.pycache is not None else
               "as this shell runs it: PYTHONDONTWRITEBYTECODE=1, stpipe compiled from source each time")
        return [f"{self.repo} ({how}):",
                f"  cold, whole process (python start-up included): {med(self.walls):.3f} s   "
                f"(CPU {med(self.cpus):.3f} s)",
                f"  cold, from `import stpipe.cli` to the verdict:   {med(self.inner):.3f} s   "
                f"(CPU {med(self.inner_cpus):.3f} s; target < 0.5 s)",
                f"  heavy modules imported by validate: {', '.join(self.heavy) if self.heavy else 'none'}"]


def cold(model: str, repeats: int, repos: list[Path], pycache: str) -> list[Cold]:
    """``repeats`` cold runs of each checkout in ``repos``, interleaved: with bytecode cached under ``pycache``
    (after one run that fills it), and as this shell would run it when it sets PYTHONDONTWRITEBYTECODE."""
    results = [Cold(r, str(Path(pycache) / str(n))) for n, r in enumerate(repos)]
    for c in results:
        c.run_once(model)  # fills the bytecode cache
        c.walls, c.cpus, c.inner, c.inner_cpus = [], [], [], []
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        results += [Cold(r, None) for r in repos]
    for _ in range(repeats):
        for c in results:
            c.run_once(model)
    return results


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
    ap.add_argument("--against", type=Path, help="another stpipe checkout to measure too (interleaved runs)")
    args = ap.parse_args()
    repos = [REPO] + ([args.against.resolve()] if args.against else [])
    with tempfile.TemporaryDirectory() as pycache:
        results = cold(args.model, args.repeats, repos, pycache)
    hot = warm(args.model, args.repeats)
    print(f"stpipe validate model={args.model}  ({args.repeats} runs each, medians; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    for c in results:
        print(*c.report(), sep="\n")
    print(f"  warm, in-process (imports done; {REPO}):  {statistics.median(hot):.3f} s")


if __name__ == "__main__":
    main()
