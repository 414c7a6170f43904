"""One writer per output (issue 19, item 6): the lock is exclusive, names its holder, is taken over only from a
dead process of this host, and never follows a planted link."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from stpipe.errors import CommandError
from stpipe.lock import OutputLock, lock_path


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    out = tmp_path / "e.npy"
    with OutputLock(out):
        holder = json.loads(lock_path(out).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(CommandError, match=rf"is being written by another run \(process {os.getpid()}"):
            OutputLock(out).acquire()
    assert not lock_path(out).exists()
    with OutputLock(out):  # free again
        pass


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path):
    out = tmp_path / "e.npy"
    lock_path(out).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname(), "token": "old"}))
    seen: list[str] = []
    with OutputLock(out, log=seen.append):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert seen and "took over the lock of process" in seen[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_lock_of_another_host_is_never_taken_over(tmp_path):
    out = tmp_path / "e.npy"
    lock_path(out).write_text(json.dumps({"pid": dead_pid(), "host": "elsewhere.example"}))
    with pytest.raises(CommandError, match="on elsewhere.example.*delete the lock file"):
        OutputLock(out).acquire()
    assert lock_path(out).exists()


def test_a_planted_link_is_neither_followed_nor_removed(tmp_path):
    out = tmp_path / "e.npy"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    lock_path(out).symlink_to(victim)
    with pytest.raises(CommandError, match="not a lock stpipe wrote"):
        OutputLock(out).acquire()
    assert victim.read_text() == "keep" and lock_path(out).is_symlink()
