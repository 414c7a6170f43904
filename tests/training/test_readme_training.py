"""The README's "Training" commands pass every check ``stpipe train`` makes before weights load (composition, the
settings, the loss, the data file, the loss's columns, the evaluation data set)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from stpipe.cli import main

REPO = Path(__file__).resolve().parents[2]


def training_commands() -> list[list[str]]:
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Training", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    out = []
    for line in block.splitlines():
        words = shlex.split(line.split("&&")[0], comments=True)
        if "train" in words:
            args = words[words.index("train") + 1:]
            # a sweep: its first point (the checks are the same for each)
            args = [a.split(",")[0] for a in args if a != "-m" and not a.startswith("hydra.")]
            out.append(args)
    return out


class Built(Exception):
    """Raised where the weights would load: every check passed."""


@pytest.mark.parametrize("args", training_commands(), ids=lambda a: " ".join(a))
def test_readme_training_command_passes_the_checks(args, monkeypatch, tmp_path):
    def build(composed):
        raise Built

    monkeypatch.setattr("stpipe.commands.train.pipeline", build)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Built):
        main(["train", *args])
    assert len(training_commands()) == 4
