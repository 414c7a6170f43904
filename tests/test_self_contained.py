"""The repository is self-contained: no code in it reads a directory beside the checkout (our machines have one
named ``shared``; a fresh clone has nothing there). The data the tests and benchmarks need ships in
``stpipe/_data/`` and is found with ``stpipe.resources.dataset_file``."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BESIDE = "shared"
# '../<beside>', 'parent / "<beside>"', 'parents[2] / "<beside>"' (the pattern is assembled so this file does not match)
PATTERN = re.compile(r"\.\./" + BESIDE + r"|parents?\[?[0-9]*\]? */ *[\"']" + BESIDE)


def test_no_code_reads_beside_the_checkout():
    files = [p for d in ("stpipe", "tests", "benchmarks", "examples", ".ci") for p in (REPO / d).rglob("*")
             if p.is_file() and p.suffix in (".py", ".yaml", ".toml", ".sh", "") and "_data" not in p.parts]
    hits = [f"{p.relative_to(REPO)}:{n}: {line.strip()}" for p in files
            for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if PATTERN.search(line)]
    assert len(files) > 50 and not hits, "\n".join(hits)
