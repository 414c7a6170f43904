"""Saves never delete what they do not own, are safe at every instant, and fail with errors naming the file
(issue 8 items 1, 7, 8; issue 7 item 8). See docs/security.md."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest
import torch

from stpipe import files
from stpipe.builder import build
from stpipe.cli import main
from stpipe.errors import LoadError
from stpipe.formats.st import load


def tiny(tiny_bert_dir: Path, query: str = "q: ") -> dict:
    return {"name": "tiny", "prompts": {"query": query},
            "modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir), "max_seq_length": 16},
                        {"type": "Pooling", "pooling_mode": "cls"},
                        {"type": "Dense", "in_features": 32, "out_features": 8}]}


@pytest.fixture(scope="module")
def pipes(tiny_bert_dir):
    torch.manual_seed(0)
    return build(tiny(tiny_bert_dir, "old: "), device="cpu"), build(tiny(tiny_bert_dir, "new: "), device="cpu")


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------------------- ownership
def test_export_into_a_project_root_deletes_nothing(tiny_bert_dir, tmp_path, monkeypatch, capsys):
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "config.json").write_text('{"app": 1}')
    (proj / "src" / "main.py").write_text("print(1)")
    model = tmp_path / "m.yaml"
    model.write_text(json.dumps(tiny(tiny_bert_dir)))
    monkeypatch.chdir(proj)
    assert main(["export", str(model), "out=."]) == 2
    err = capsys.readouterr().err
    assert "config.json" in err and "src" in err
    assert (proj / "src" / "main.py").read_text() == "print(1)" and (proj / "config.json").read_text() == '{"app": 1}'
    assert main(["export", str(model), "out=.", "overwrite=force"]) == 2  # src/ is not a model file: still refused
    assert (proj / "src" / "main.py").is_file()


def test_a_saved_model_with_user_files_is_not_replaced(pipes, tmp_path):
    old, new = pipes
    target = tmp_path / "model"
    old.save(target)
    (target / "notes.txt").write_text("mine")
    (target / "eval").mkdir()
    with pytest.raises(LoadError, match=r"eval, notes\.txt") as e:
        new.save(target)
    assert str(target) in str(e.value)
    with pytest.raises(LoadError, match=r"not model files: eval, notes\.txt"):
        new.save(target, overwrite="force")
    assert (target / "notes.txt").read_text() == "mine" and (target / "eval").is_dir()
    assert load(target, device="cpu").prompts["query"] == "old: "


def test_force_replaces_leftover_model_files_only(pipes, tiny_bert_dir, tmp_path):
    import shutil

    target = tmp_path / "plain"
    shutil.copytree(tiny_bert_dir, target)  # a plain Hugging Face folder: no modules.json accounts for it
    (target / "3_Dense").mkdir()
    (target / "3_Dense" / "config.json").write_text("{}")
    with pytest.raises(LoadError, match="not exactly a saved model"):
        pipes[1].save(target)
    pipes[1].save(target, overwrite="force")
    assert not (target / "3_Dense").exists() and load(target, device="cpu").prompts["query"] == "new: "


def test_overwrite_is_checked(pipes, tmp_path):
    with pytest.raises(LoadError, match="overwrite must be one of model, force"):
        pipes[0].save(tmp_path / "x", overwrite="yes")


def test_saved_directories_get_the_usual_permissions(pipes, tmp_path):
    mask = os.umask(0o022)
    try:
        pipes[0].save(tmp_path / "model")
    finally:
        os.umask(mask)
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "model" / "1_Pooling").stat().st_mode & 0o777 == 0o755


# ------------------------------------------------------------------------------------------- write errors
@pytest.mark.parametrize("error", ["disk-full", "safetensors"])
def test_disk_full_is_a_load_error_naming_the_file(pipes, tmp_path, monkeypatch, error):
    from safetensors import SafetensorError

    import stpipe.modules.module as module_mod

    def full(*args, **kwargs):
        if error == "disk-full":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(module_mod, "save_safetensors_model", full)
    target = tmp_path / "model"
    with pytest.raises(LoadError, match="No space left on device") as e:
        pipes[0].save(target)
    assert str(target / "2_Dense") in str(e.value)
    assert leftovers(tmp_path) == [] and not target.exists()


def test_cli_export_disk_full_exits_2(tiny_bert_dir, tmp_path, monkeypatch, capsys):
    import stpipe.modules.module as module_mod

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(module_mod, "save_safetensors_model", full)
    model = tmp_path / "m.yaml"
    model.write_text(json.dumps(tiny(tiny_bert_dir)))
    assert main(["export", str(model), f"out={tmp_path / 'out'}"]) == 2
    assert "No space left on device" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- fault injection
def _kill_at(k: int):
    calls = []

    def hook(name: str) -> None:
        calls.append(name)
        if len(calls) == k:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_a_save_killed_at_any_step_leaves_a_complete_model(pipes, tmp_path, monkeypatch, exchange):
    """SIGKILL a save (in a forked child) at its k-th filesystem step, for every k: the target then loads the
    old or the new model, and the next save leaves no temporaries behind."""
    old, new = pipes
    if not exchange:
        monkeypatch.setattr(files, "_exchange_supported", False)
    target = tmp_path / "model"
    seen = set()
    for k in range(1, 40):
        old.save(target)  # also the "next save" after the previous kill
        assert leftovers(tmp_path) == [], f"after the kill at step {k - 1}"
        pid = os.fork()
        if pid == 0:  # the child: save, killed at step k
            files.fs.hook = _kill_at(k)
            try:
                new.save(target)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        query = load(target, device="cpu").prompts["query"]
        assert query in ("old: ", "new: "), f"killed at step {k}"
        seen.add(query)
        if not killed:
            assert query == "new: " and os.WEXITSTATUS(status) == 0
            break
    else:
        pytest.fail("the save never completed")
    assert seen == {"old: ", "new: "} and k > 5
    old.save(target)
    assert leftovers(tmp_path) == []


def test_recover_restores_a_model_moved_aside(pipes, tmp_path):
    target = tmp_path / "model"
    pipes[0].save(target)
    os.rename(target, tmp_path / ".model.old-999999999-abcd1234")  # a kill between the two renames, by a dead pid
    assert load(target, device="cpu").prompts["query"] == "old: "
    assert leftovers(tmp_path) == []


def test_stale_temporaries_of_killed_saves_are_cleaned(pipes, tmp_path):
    target = tmp_path / "model"
    pipes[0].save(target)
    for name in (".model.tmp-999999999-0123abcd", ".model.tmp-k2j4_x9q", ".model.old-1a2b3c4d"):  # dead savers
        (tmp_path / name / "1_Pooling").mkdir(parents=True)
        (tmp_path / name / "model.safetensors").write_bytes(b"\0" * 1024)
    (tmp_path / ".model.tmp-mine").mkdir()  # not a name stpipe makes: kept
    (tmp_path / f".model.tmp-{os.getpid()}-0123abcd").mkdir()  # a save in progress (a live process): kept
    pipes[1].save(target)
    assert leftovers(tmp_path) == [f".model.tmp-{os.getpid()}-0123abcd", ".model.tmp-mine"]


def test_a_failed_single_file_write_keeps_the_old_file(tmp_path):
    """files.atomic_file (embeddings, predictions, corpus chunks): the old file or the new one, never half."""
    target = tmp_path / "emb.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), files.atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n" and sorted(os.listdir(tmp_path)) == ["emb.jsonl"]
    with files.atomic_file(target) as tmp:
        tmp.write_text("new\n")
    assert target.read_text() == "new\n" and sorted(os.listdir(tmp_path)) == ["emb.jsonl"]


def test_a_failed_directory_write_keeps_the_old_model(pipes, tmp_path):
    """save_dir.replacing (ST saves, graph exports): an error inside leaves the old model and no temporary."""
    out = tmp_path / "m"
    pipes[0].save(str(out))
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(LoadError, match="cannot write the export: No space left"), \
            files.replacing(out, None, "export") as tmp:
        (tmp / "modules.json").write_text("[]")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in out.iterdir()) == before and sorted(os.listdir(tmp_path)) == ["m"]
