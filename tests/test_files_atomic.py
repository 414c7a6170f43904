"""Temp files (issue 19, item 2): created exclusively under unpredictable names next to the target, a planted link
is never written through, and stale temporaries of killed writes are cleaned by the next write of that output."""

from __future__ import annotations

import os
import subprocess

import pytest

import stpipe.files as files
from stpipe.files import atomic_file, atomic_write


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_temp_names_are_unpredictable_and_in_the_targets_folder(tmp_path, monkeypatch):
    seen = []
    real = files._temp_file

    def spy(target):
        tmp, fd = real(target)
        seen.append(tmp)
        return tmp, fd

    monkeypatch.setattr(files, "_temp_file", spy)
    for _ in range(2):
        with atomic_write(tmp_path / "a.txt", "w") as fh:
            fh.write("x")
    assert seen[0] != seen[1] and all(p.parent == tmp_path for p in seen)
    assert all(p.name.startswith(f".a.txt.tmp-{os.getpid()}-") and len(p.name.rsplit("-", 1)[1]) == 16 for p in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


@pytest.mark.parametrize("helper", ["atomic_write", "atomic_file"])
def test_a_link_planted_at_the_temp_name_is_never_written_through(tmp_path, monkeypatch, helper):
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "0" * 2 * n)  # as if the attacker guessed it
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / f".a.txt.tmp-{os.getpid()}-{'0' * 16}").symlink_to(victim)
    with pytest.raises(FileExistsError):
        if helper == "atomic_write":
            with atomic_write(tmp_path / "a.txt", "w") as fh:
                fh.write("evil")
        else:
            with atomic_file(tmp_path / "a.txt") as tmp:
                tmp.write_text("evil")
    assert victim.read_text() == "keep" and not (tmp_path / "a.txt").exists()


def test_atomic_file_refuses_a_temporary_swapped_for_a_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    with pytest.raises(OSError, match="replaced while it was written"):
        with atomic_file(tmp_path / "a.txt") as tmp:
            tmp.unlink()
            tmp.symlink_to(victim)
    assert victim.read_text() == "keep" and not (tmp_path / "a.txt").exists()


def test_stale_temporaries_of_dead_writers_are_removed_by_the_next_write(tmp_path):
    stale = tmp_path / f".a.txt.tmp-{dead_pid()}-{'1' * 16}"
    live = tmp_path / f".a.txt.tmp-{os.getpid()}-{'2' * 16}"
    other = tmp_path / f".b.txt.tmp-{dead_pid()}-{'3' * 16}"
    link = tmp_path / f".a.txt.tmp-{dead_pid()}-{'4' * 16}"
    for p in (stale, live, other):
        p.write_text("half")
    link.symlink_to(other)
    with atomic_write(tmp_path / "a.txt") as fh:
        fh.write(b"new")
    assert not stale.exists() and live.exists() and other.exists() and link.is_symlink()
    assert (tmp_path / "a.txt").read_bytes() == b"new"


def test_report_and_sweep_files_never_follow_a_planted_link(tmp_path):
    from stpipe.commands.report import _write
    from stpipe.commands.sweep import write_json

    victim = tmp_path / "victim"
    victim.write_text("keep")
    for name in ("report.md.tmp", ".report.md.tmp", ".metrics.json.tmp"):  # the fixed names of before
        (tmp_path / name).symlink_to(victim)
    _write(tmp_path / "report.md", "| table |\n")
    write_json(tmp_path / "metrics.json", {"a": 1})
    assert victim.read_text() == "keep"
    assert (tmp_path / "report.md").read_text() == "| table |\n" and not (tmp_path / "report.md").is_symlink()
    assert (tmp_path / "metrics.json").read_text() == '{\n  "a": 1\n}\n'
