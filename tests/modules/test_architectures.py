"""The architecture matrix (docs/architectures.md) holds: its ✓ pairs are at parity with sentence-transformers 6.2
(class, output names and shapes, values ≤ 1e-5, save → load both ways), its ✓+ pairs are where stpipe is right
and sentence-transformers is not, and it lists every (model type, task) pair transformers maps.

CI runs a fixed share of the ✓ pairs (every fourth one, ~0.5–1 s each); ``STPIPE_ARCH_MATRIX=all`` runs them all.
Regenerate the table with ``python -m tests.modules.architectures_matrix --write docs/architectures.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.modules.architectures_build import TASK_MAPPINGS, model_types
from tests.modules.architectures_matrix import check_pair
from tests.modules.architectures_table import parse

TABLE = Path(__file__).resolve().parents[2] / "docs" / "architectures.md"
CELLS = parse(TABLE.read_text(encoding="utf-8")) if TABLE.is_file() else {}
AT_PARITY = sorted(k for k, v in CELLS.items() if v in ("✓", "✓+"))
SHARE = AT_PARITY if os.environ.get("STPIPE_ARCH_MATRIX") == "all" else AT_PARITY[::4]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("architectures")


def test_the_table_lists_every_mapped_pair():
    import transformers

    mapped = {(t, task) for task in TASK_MAPPINGS for t in model_types(task)}
    assert TABLE.is_file(), "docs/architectures.md is missing"
    assert f"transformers {transformers.__version__}" in TABLE.read_text(encoding="utf-8"), \
        "the table was generated with another transformers; regenerate it"
    assert set(CELLS) == mapped, sorted(set(CELLS) ^ mapped)[:10]
    assert sum(v == "✓" for v in CELLS.values()) >= 100


@pytest.mark.slow
@pytest.mark.parametrize("model_type, task", SHARE, ids=[f"{t}-{task}" for t, task in SHARE])
def test_pair(model_type, task, root):
    outcome = check_pair(model_type, task, root)
    if CELLS[(model_type, task)] == "✓+":
        assert outcome.reason.startswith("✓ stpipe better"), outcome.reason
    else:
        assert outcome.ok, outcome.reason
