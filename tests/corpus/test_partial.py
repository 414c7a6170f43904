"""The partial output of a resumable encode is untrusted: verified or discarded, never followed (issue 19, items 1
and 6), and the property test: random kills and random tampering give the uninterrupted run's bytes or a clear
refusal, and touch nothing outside the output's own partial folder."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stpipe.config.validate as validate_mod
import stpipe.corpus.runner as runner
from stpipe.corpus.partial import Partial
from stpipe.errors import CommandError


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs but ``finally`` blocks (the commits before it are on disk)."""


class FakePipe:
    """An encoder whose rows depend on the text only (so any chunking gives the same rows)."""

    kill_at: int | None = None
    calls = 0

    def supports(self, what: str) -> bool:
        return False

    def encode(self, items, show_progress_bar=False, **kw):
        FakePipe.calls += 1
        if FakePipe.kill_at is not None and FakePipe.calls > FakePipe.kill_at:
            raise Killed
        return np.array([[len(t), sum(map(ord, t)) % 97, t.count("a"), 1.5] for t in items], dtype=np.float32)


class Composed:
    def __init__(self, run: dict):
        self.run, self.definition, self.sources, self.base_dir = run, {"modules": ["fake"]}, None, None


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(runner, "build_pipeline", lambda definition, kwargs: FakePipe())
    monkeypatch.setattr(validate_mod, "validate", lambda definition, **kw: definition)
    FakePipe.kill_at, FakePipe.calls = None, 0


def run_encode(inputs: Path, out: Path, kill_at: int | None = None, **extra) -> None:
    FakePipe.kill_at, FakePipe.calls = kill_at, 0
    run = {"inputs": str(inputs), "chunk_size": 3, "batch_size": 4, **extra}
    runner.encode_corpus(Composed(run), str(out), log=lambda msg: None)


def snapshot(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for d, dirs, files in os.walk(root):
        for n in [*dirs, *files]:
            p = Path(d, n)
            out[str(p.relative_to(root))] = f"link:{os.readlink(p)}" if p.is_symlink() else \
                (p.read_bytes() if p.is_file() else "dir")
    return out


def test_manifest_entries_outside_the_folder_are_never_deleted_nor_spliced_in(fake, tmp_path):
    victim = tmp_path / "victim.npy"
    np.save(victim, np.full((3, 4), 7, dtype=np.float32))
    target = tmp_path / "out" / "e.npy"
    target.parent.mkdir()
    p = Partial(target, "k", 2, False)
    p.add(0, np.zeros((3, 4), dtype=np.float32), [0, 1, 2], False)
    manifest = json.loads((p.dir / "manifest.json").read_text())
    for name in ("../../victim.npy", str(victim)):
        manifest["done"][0]["file"] = name  # the size and hash of the victim, as a careful attacker would
        manifest["done"][0]["bytes"] = victim.stat().st_size
        (p.dir / "manifest.json").write_text(json.dumps(manifest))
        seen: list[str] = []
        again = Partial(target, "k", 2, False, log=seen.append)
        assert again.resumed == 0 and "cannot be used" in seen[0]
        assert victim.is_file() and np.load(victim).max() == 7  # neither deleted nor used
        again.discard()
        p = Partial(target, "k", 2, False)
        p.add(0, np.zeros((3, 4), dtype=np.float32), [0, 1, 2], False)


def test_a_truncated_or_linked_manifest_is_discarded_with_a_warning(tmp_path):
    target = tmp_path / "e.npy"
    outside = tmp_path / "outside.json"
    p = Partial(target, "k", 2, False)
    p.add(0, np.zeros((3, 4), dtype=np.float32), [0, 1, 2], False)
    good = (p.dir / "manifest.json").read_text()
    outside.write_text(good)
    for tamper in ("truncate", "link"):
        (p.dir / "manifest.json").unlink()
        if tamper == "truncate":
            (p.dir / "manifest.json").write_text(good[: len(good) // 2])
        else:
            (p.dir / "manifest.json").symlink_to(outside)
        seen: list[str] = []
        again = Partial(target, "k", 2, False, log=seen.append)
        assert again.resumed == 0 and "discarding the partial output" in seen[0]
        assert outside.read_text() == good
        again.add(0, np.zeros((3, 4), dtype=np.float32), [0, 1, 2], False)
        p = again


def test_an_input_edited_in_place_with_the_same_size_starts_over(fake, tmp_path):
    inputs = tmp_path / "c.txt"
    inputs.write_text("aaa\nbbb\nccc\nddd\neee\nfff\nggg\n")
    out = tmp_path / "e.npy"
    with pytest.raises(Killed):
        run_encode(inputs, out, kill_at=1)
    st_ = inputs.stat()
    inputs.write_text("aaa\nbbb\nccc\nddd\neee\nfff\nzzz\n".replace("aaa", "xyz"))  # same size
    os.utime(inputs, ns=(st_.st_atime_ns, st_.st_mtime_ns))  # and the same mtime
    run_encode(inputs, out)
    assert np.load(out)[0, 1] == sum(map(ord, "xyz")) % 97  # the first chunk was encoded again


def test_an_input_rewritten_during_the_run_is_refused(fake, monkeypatch, tmp_path):
    inputs = tmp_path / "c.txt"
    inputs.write_text("".join(f"line {i}\n" for i in range(9)))
    out = tmp_path / "e.npy"
    real = FakePipe.encode

    def rewriting(self, items, **kw):
        if FakePipe.calls == 1:
            inputs.write_text("".join(f"LINE {i}\n" for i in range(9)))
        return real(self, items, **kw)

    monkeypatch.setattr(FakePipe, "encode", rewriting)
    with pytest.raises(CommandError, match="changed during the run"):
        run_encode(inputs, out)
    assert not out.exists() and not (tmp_path / ".e.npy.partial").exists()


TAMPERS = ("delete", "truncate", "extend", "rename", "link", "manifest-key", "manifest-path", "manifest-garble",
           "manifest-link", "dir-link", "temp", "stale-lock")


def tamper(kind: str, partial: Path, outside: Path, rnd: st.DataObject) -> None:
    files = sorted(p for p in partial.iterdir() if p.name.startswith("chunk-")) if partial.is_dir() else []
    manifest = partial / "manifest.json"
    pick = rnd.draw(st.sampled_from(files)) if files else None
    if kind == "delete" and pick:
        pick.unlink()
    elif kind == "truncate" and pick:
        pick.write_bytes(pick.read_bytes()[:-5])
    elif kind == "extend" and pick:
        pick.write_bytes(pick.read_bytes() + b"\n[1]")
    elif kind == "rename" and len(files) > 1:
        files[0].replace(files[-1])
    elif kind == "link" and pick:
        copy = outside / f"copy-{len(list(outside.iterdir()))}"
        copy.write_bytes(pick.read_bytes())  # the chunk's very bytes, outside: still never followed
        pick.unlink()
        pick.symlink_to(copy)
    elif kind.startswith("manifest") and manifest.is_file() and not manifest.is_symlink():
        try:
            m = json.loads(manifest.read_text())
        except ValueError:
            return  # garbled already
        if kind == "manifest-key":
            m["key"] = "0" * 64
        elif kind == "manifest-path" and m["done"]:
            m["done"][0]["file"] = rnd.draw(st.sampled_from(["../../outside/keep", str(outside / "keep"),
                                                              "chunk-000009.npy"]))
        text = json.dumps(m)
        if kind == "manifest-garble":
            text = text[: rnd.draw(st.integers(0, len(text) - 1))]
        manifest.unlink()
        if kind == "manifest-link":
            (outside / "m.json").write_text(text)
            manifest.symlink_to(outside / "m.json")
        else:
            manifest.write_text(text)
    elif kind == "dir-link" and partial.is_dir() and not partial.is_symlink():
        shutil.rmtree(partial)
        partial.symlink_to(outside, target_is_directory=True)
    elif kind == "temp" and partial.is_dir():
        (partial / ".chunk-000001.npy.123.tmp").write_bytes(b"half")
    elif kind == "stale-lock":
        (partial.parent / f".{partial.name[1:-8]}.lock").write_text(json.dumps({"pid": 2 ** 22 + 7, "host":
                                                                               os.uname().nodename}))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from([".npy", ".jsonl"]), kill_at=st.integers(0, 4), kinds=st.lists(st.sampled_from(TAMPERS),
       max_size=3), rnd=st.data())
def test_kill_and_tamper_give_the_same_bytes_or_a_clear_refusal(fake, fmt, kill_at, kinds, rnd):
    root = Path(tempfile.mkdtemp(prefix="stpipe-prop-"))
    try:
        inputs = root / "c.txt"
        inputs.write_text("".join(f"sentence {i} about a cat\n" for i in range(14)))  # 5 chunks of 3
        run_encode(inputs, root / f"ref{fmt}")
        outside = root / "outside"
        outside.mkdir()
        (outside / "keep").write_text("the user's file")
        out = root / "out" / f"e{fmt}"
        partial = out.with_name(f".e{fmt}.partial")
        with pytest.raises(Killed):
            run_encode(inputs, out, kill_at=kill_at)
        for kind in kinds:
            tamper(kind, partial, outside, rnd)
        before = snapshot(outside), inputs.read_bytes(), (root / f"ref{fmt}").read_bytes()
        try:
            run_encode(inputs, out)
        except CommandError as exc:
            assert "dir-link" in kinds and "is not a directory stpipe made" in str(exc)
        else:
            assert out.read_bytes() == (root / f"ref{fmt}").read_bytes()
            assert sorted(p.name for p in out.parent.iterdir()) == [out.name]
        assert (snapshot(outside), inputs.read_bytes(), (root / f"ref{fmt}").read_bytes()) == before
    finally:
        shutil.rmtree(root, ignore_errors=True)
