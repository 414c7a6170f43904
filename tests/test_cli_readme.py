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


def test_each_verbs_help_lists_its_settings_from_the_schema_and_the_version(capsys):
    import yaml

    from stpipe.cli import VERBS
    from stpipe.commands.help import SETTINGS
    from stpipe.config.schema import load_schema

    props = load_schema("run.schema.json")["properties"]
    defaults = yaml.safe_load((REPO / "conf" / "config.yaml").read_text(encoding="utf-8"))
    assert set(SETTINGS) == set(VERBS)
    read = {k for keys in SETTINGS.values() for k in keys}
    assert read <= set(props) and set(props) - read == {"defaults", "hydra"}  # every setting is some verb's
    for verb in VERBS:
        assert main([verb, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: stpipe {verb} — ") and "\nexample:\n  stpipe " + verb in out, out[:300]
        for key in SETTINGS[verb]:
            default = defaults.get(key)
            if isinstance(default, dict):
                assert all(f"  {key}.{k} (default " in out for k in default), (verb, key)
            else:
                assert f"\n  {key}" in out, (verb, key)
        assert "learning_rate (default" in out or verb != "train"
    out_encode = main(["encode", "-h"]) == 0 and capsys.readouterr().out
    assert "  chunk_size (default 10000)\n" in out_encode and "  show_progress_bar (default null)\n" in out_encode
    assert main(["--version"]) == 0
    from stpipe import __version__

    assert capsys.readouterr().out == f"stpipe {__version__}\n"


@pytest.mark.slow
def test_the_quick_start_runs(tmp_path, monkeypatch, capsys, minilm_dir):
    import numpy as np

    text = (REPO / "README.md").read_text(encoding="utf-8").split("## Quick start", 1)[1]
    line = re.search(r"```bash\n(.*?)```", text, re.S).group(1).strip()
    words = shlex.split(line.rsplit("&&", 1)[1])  # pip install … && stpipe encode …
    assert words[:2] == ["stpipe", "encode"]
    monkeypatch.chdir(tmp_path)
    args = [a.replace("inputs=", f"inputs={REPO}/") if a.startswith("inputs=") else a for a in words[2:]]
    assert main(["encode", *args]) == 0, capsys.readouterr().err
    n = len((REPO / "examples" / "data" / "sentences.txt").read_text().splitlines())
    assert np.load(tmp_path / "embeddings.npy").shape == (n, 384)
