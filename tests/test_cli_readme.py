"""The README's "Command line" examples use files that exist in the repository, and each model + overrides it
gives composes and validates (``stpipe validate`` with the same arguments: no weights load, so this stays cheap)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from stpipe.cli import _split_args, main

REPO = Path(__file__).resolve().parent.parent


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    out = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if ">" in words:
            words = words[: words.index(">")]
        if words:
            out.append(words)
    return out


COMMANDS = readme_commands()


def test_the_examples_use_files_of_the_repository():
    assert COMMANDS[0] == ["python", "examples/make_standins.py"] and (REPO / COMMANDS[0][1]).is_file()
    written = set()
    for words in COMMANDS[1:]:
        assert words[0] == "stpipe", words
        model, overrides, _ = _split_args(words[2:])
        settings = dict(o.split("=", 1) for o in overrides if "=" in o)
        if "inputs" in settings:
            inputs = REPO / settings["inputs"]
            assert inputs.is_file(), words
            if inputs.suffix == ".jsonl":
                for line in inputs.read_text().splitlines():
                    rec = json.loads(line)
                    assert not isinstance(rec, dict) or "image" not in rec or (inputs.parent / rec["image"]).is_file()
        if words[1] == "export":
            written.add(settings["out"])
        elif words[1] == "import":
            assert model in written, f"{words}: import a directory an earlier example exported"
        elif model is not None:
            assert (REPO / model).exists(), words


@pytest.mark.parametrize("words", [w for w in COMMANDS if w[:2] in (["stpipe", "encode"], ["stpipe", "validate"],
                                                                     ["stpipe", "export"])],
                         ids=lambda w: " ".join(w[1:]))
def test_each_example_validates(words, standins, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    sweep = [f"hydra.sweep.dir={tmp_path / 'sweep'}"] if "-m" in words else []  # a sweep's job dirs: not in the repo
    rc = main(["validate", *words[2:], *sweep])
    assert rc == 0, capsys.readouterr().err
