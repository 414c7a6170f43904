"""What a new user tripped over (issue 21), met as the user meets it: the ``stpipe`` entry point in a fresh
process, several commands per process (each prints a separator) to keep the cost of starting Python and torch low.
Each check failed before the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DRIVER = """
import sys
from stpipe.cli import main
for args in [a.split("\\x1f") for a in sys.argv[1:]]:
    print("=== rc", main(args), " ".join(args), file=sys.stderr, flush=True)
"""


def run_all(cwd: Path, *commands: list[str], env: dict[str, str] | None = None) -> list[tuple[int, str]]:
    """(exit code, stderr) of each command, in order, from one process."""
    p = subprocess.run([sys.executable, "-c", DRIVER, *("\x1f".join(c) for c in commands)], cwd=cwd,
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {}), "PYTHONPATH": str(REPO)})
    out, chunk = [], ""
    for line in p.stderr.splitlines(keepends=True):
        if line.startswith("=== rc "):
            out.append((int(line.split()[2]), chunk))
            chunk = ""
        else:
            chunk += line
    assert len(out) == len(commands), p.stderr[-3000:]
    return out


@pytest.mark.slow
def test_run_settings_paths_and_stand_ins_are_checked_before_weights_load(tmp_path):
    (tmp_path / "in.txt").write_text("a\nb\n")
    (tmp_path / "m.yaml").write_text("modules:\n  - type: Transformer\n    model_name_or_path: nosuchmodel\n"
                                     "  - type: Pooling\n")
    store = tmp_path / "empty-store"
    store.mkdir()
    (task, prompt, plain, output, standin, looked) = run_all(
        tmp_path,
        ["validate", "model=asymmetric", "task=querry"],
        ["encode", "model=asymmetric", "prompt_name=querry", "inputs=in.txt", "output=e.npy"],
        ["validate", "model=minilm", "task=querry"],
        ["encode", "model=minilm", "inputs=in.txt", f"output={tmp_path}/nonexistdir/x.npy"],
        ["validate", "model=asymmetric"],
        ["validate", "m.yaml"],
        env={"STPIPE_MODELS": str(store)})
    # 4: a task no route serves, an unknown prompt name, a task of a model without a Router: exit 2, the choices
    assert task[0] == 2 and "expected: one of: 'query', 'document'" in task[1] and "did you mean 'query'" in task[1]
    assert prompt[0] == 2 and "[run.prompt_name]" in prompt[1] and "did you mean 'query'" in prompt[1]
    assert plain[0] == 2 and "[run.task]" in plain[1] and "it has no Router" in plain[1]
    assert not (tmp_path / "e.npy").exists()
    # 10: a missing parent of output= is refused, not created
    assert output[0] == 2 and "does not exist" in output[1] and "mkdir -p" in output[1], output[1]
    assert not (tmp_path / "nonexistdir").exists()
    # 8: a missing stand-in behind load_from gets the stand-ins hint
    assert standin[0] == 2 and "[check.load-from]" in standin[1], standin[1]
    assert "python examples/make_standins.py" in standin[1] and "$STPIPE_MODELS" in standin[1]
    # 10: each place looked in is named once
    assert looked[0] == 2 and looked[1].count(str(tmp_path / "nosuchmodel")) == 1, looked[1]
    assert all("Traceback" not in err for _, err in (task, prompt, plain, output, standin, looked))
