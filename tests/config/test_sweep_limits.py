"""A sweep is counted before it is expanded (a huge one refused with its count, in bounded memory and time), its
job sub-directory stays inside the sweep directory, and a long validation shows progress."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stpipe.config.compose import sweep_points
from stpipe.config.overrides import parse_overrides
from stpipe.config.sweep_limits import Progress, count_points, outside, subdir_problem
from stpipe.errors import ConfigError


def test_points_are_counted_without_listing_them():
    assert count_points(parse_overrides(["a=range(0,100000000)", "b=range(0,100000000)"])) == 10 ** 16
    assert count_points(parse_overrides(["a=range(1.0,2.0,0.25)", "b=choice(x,y,z)", "c=1,2"])) == 24
    assert count_points(parse_overrides(["a=range(10,0,-3)", "a=1,2"])) == 2  # a key given twice: the last
    assert count_points(parse_overrides(["a=range(5,1)"])) == 0


def test_a_huge_sweep_is_refused_with_its_count_in_bounded_memory_and_time():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as exc:
        sweep_points("minilm", ["truncate_dim=range(0,100000000)", "batch_size=range(1,100000001)"])
    assert time.perf_counter() - t0 < 30
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 < 2 * 2 ** 30
    problem = exc.value.problems[0]
    assert "10,000,000,000,000,000 points, more than max_sweep_points=10,000" in problem.message
    assert "max_sweep_points=N" in problem.hint
    with pytest.raises(ConfigError, match="3 points, more than max_sweep_points=2"):
        sweep_points("minilm", ["truncate_dim=8,16,32", "max_sweep_points=2"], validate=False)


@pytest.mark.parametrize(("subdir", "overrides", "why"), [
    ("../../outside", [], "'..' is a parent directory"),
    ("/tmp/abs", [], "absolute path"),
    ("a/${hydra.job.num}/../../..", [], "'..'"),
    ("${oc.env:HOME}", [], "only ${hydra.job.num}"),
    ("${hydra.job.override_dirname}", ["output=../../x.npy,y.npy"], "'..' path segment"),
    (".", [], "the sweep directory itself"),
])
def test_a_subdir_that_leaves_the_sweep_directory_is_refused(subdir, overrides, why):
    assert why in subdir_problem(subdir, overrides)


def test_safe_subdirs_pass_and_containment_is_checked_on_the_real_path(tmp_path):
    for ok in ("${hydra.job.num}", "run_${hydra.job.id}", "${hydra.job.override_dirname}", "a/b_${hydra.job.num}"):
        assert subdir_problem(ok, ["truncate_dim=8,16", "output=/tmp/e.npy"]) is None
    (tmp_path / "sweep").mkdir()
    os.symlink(tmp_path, tmp_path / "sweep" / "link")
    assert outside(tmp_path / "sweep" / "link" / "x", tmp_path / "sweep")
    assert not outside(tmp_path / "sweep" / "0", tmp_path / "sweep")


def test_progress_is_shown_while_a_long_sweep_is_validated(capsys):
    show = Progress(100, interval=0.0)
    for n in (1, 50, 100):
        show(n)
    assert capsys.readouterr().err.splitlines()[-1].startswith("validating sweep points: 100 of 100")
    quiet = Progress(5, interval=0.0)
    quiet(5)
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_the_cli_refuses_a_huge_sweep_and_an_escaping_subdir(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = [sys.executable, "-m", "stpipe", "validate", "-m", "model=minilm"]
    r = subprocess.run([*run, "truncate_dim=range(0,100000000)", "batch_size=range(1,100000001)",
                        "hydra.sweep.dir=s"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 2 and "points, more than max_sweep_points=10,000" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "s").exists()
    r = subprocess.run([*run, "truncate_dim=8,16", "hydra.sweep.dir=s", "hydra.sweep.subdir=../../escaped"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 2 and "leaves the sweep directory" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not list(Path(tmp_path).parent.parent.glob("escaped"))
