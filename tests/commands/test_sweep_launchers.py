"""Sweeps run through the `stpipe` command (a subprocess, as a user runs them) under Hydra's sweepers and launchers:
failure isolation, resume, joblib = basic, submitit, Ray, Optuna. A tiny model: each job takes well under a second
once torch is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.slow

SWEEP = ["model.modules.1.pooling_mode=mean,cls,max", "truncate_dim=4,8,16,64"]  # 3 × 4; hidden size 32
BROKEN = 5  # point 5 (cls, 8) cannot write its output: it fails at run time, after every point validated


def stpipe(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([sys.executable, "-m", "stpipe", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_bert_dir) -> Path:
    d = tmp_path_factory.mktemp("sweeps")
    (d / "tiny.yaml").write_text(f"name: tiny\nmodules:\n  - type: Transformer\n    model_name_or_path: "
                                 f"{tiny_bert_dir}\n  - type: Pooling\n    pooling_mode: mean\n")
    (d / "in.txt").write_text("a cat\nthe dog runs in the rain\nparis is the capital of france\n")
    return d


def jobs(sweep_dir: Path) -> dict[int, Path]:
    return {int(p.name): p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()}


def metrics(sweep_dir: Path) -> dict[tuple[str, ...], dict]:
    """Each successful point's metrics, keyed by its overrides."""
    out = {}
    for job in jobs(sweep_dir).values():
        if (job / "metrics.json").is_file():
            m = json.loads((job / "metrics.json").read_text())
            out[tuple(m["overrides"])] = m["metrics"]
    return out


@pytest.fixture(scope="module")
def basic_sweep(work) -> tuple[Path, subprocess.CompletedProcess]:
    sweep_dir = work / "basic"
    (sweep_dir / str(BROKEN) / "e.npy").mkdir(parents=True)  # a directory where the point's output file goes
    r = stpipe(work, "encode", "tiny.yaml", "-m", *SWEEP, "inputs=in.txt", "output=e.npy",
               f"hydra.sweep.dir={sweep_dir}")
    return sweep_dir, r


def test_a_point_that_fails_at_run_time_is_recorded_and_the_others_go_on(basic_sweep):
    sweep_dir, r = basic_sweep
    assert "12 of 12 sweep points valid" in r.stdout  # validated before the first job: the failure comes later
    assert r.returncode == 1, r.stderr  # some point failed
    assert (sweep_dir / "multirun.yaml").is_file()
    assert sorted(jobs(sweep_dir)) == list(range(12))
    for num, job in jobs(sweep_dir).items():
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert {"model.modules.1.pooling_mode=" + ("mean", "cls", "max")[num // 4],
                f"truncate_dim={(4, 8, 16, 64)[num % 4]}"} <= set(overrides)
        assert (job / "definition.yaml").is_file() and (job / "run.yaml").is_file()
        if num == BROKEN:
            continue
        m = json.loads((job / "metrics.json").read_text())
        assert m["status"] == "ok" and m["verb"] == "encode" and m["main_metric"] is None
        assert m["metrics"] == {"dimension": min((4, 8, 16, 64)[num % 4], 32), "inputs": 3}
        assert "model=_file_" not in " ".join(m["overrides"])  # the user's overrides, not stpipe's private choice
        assert np.load(job / "e.npy").shape == (3, m["metrics"]["dimension"])
        definition = yaml.safe_load((job / "definition.yaml").read_text())
        assert definition["modules"][1]["pooling_mode"] == ("mean", "cls", "max")[num // 4]
        assert not (job / "error.json").exists()
    err = json.loads((sweep_dir / str(BROKEN) / "error.json").read_text())
    assert err["status"] == "failed" and err["error"] == "CommandError" and "cannot write it" in err["message"]
    assert "truncate_dim=8" in err["overrides"] and "model.modules.1.pooling_mode=cls" in err["overrides"]
    assert not (sweep_dir / str(BROKEN) / "metrics.json").exists()
    assert f"FAIL  point {BROKEN}" in r.stderr and "11 of 12 sweep points ok, 1 failed" in r.stderr


def test_report_of_the_sweep_shows_eleven_results_and_the_failure(basic_sweep):
    """`stpipe report` over the real sweep directory (not a hand-made one): 11 results, 1 failure with its error,
    and the Markdown and CSV files. (Before the resume test below fixes the broken point.)"""
    sweep_dir, _ = basic_sweep
    r = stpipe(sweep_dir, "report", str(sweep_dir), f"out={sweep_dir / 'report'}")
    assert r.returncode == 0, r.stderr
    assert "12 points: 11 results, 1 failed" in r.stdout
    failed_row = next(line for line in r.stdout.splitlines() if line.split()[:1] == [str(BROKEN)])
    assert "FAILED:" in failed_row and "cls" in failed_row
    for name in ("report.md", "report.csv"):
        assert (sweep_dir / "report" / name).stat().st_size > 0
    # encode reports no main metric, so there is nothing to chart (an evaluate sweep's chart:
    # tests/commands/test_evaluate.py)
    assert "no chart" in r.stderr and not (sweep_dir / "report" / "report.png").exists()


def test_resume_runs_only_the_failed_point(basic_sweep, work):
    sweep_dir, _ = basic_sweep
    (sweep_dir / str(BROKEN) / "e.npy").rmdir()  # the cause is fixed
    before = {n: (j / "e.npy").stat().st_mtime_ns for n, j in jobs(sweep_dir).items() if n != BROKEN}
    r = stpipe(work, "encode", "tiny.yaml", "-m", *SWEEP, "inputs=in.txt", "output=e.npy", "resume=true",
               f"hydra.sweep.dir={sweep_dir}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("skipped (resume)") == 11 and r.stdout.count("encoded 3 inputs") == 1
    assert {n: (j / "e.npy").stat().st_mtime_ns for n, j in jobs(sweep_dir).items() if n != BROKEN} == before
    assert json.loads((sweep_dir / str(BROKEN) / "metrics.json").read_text())["metrics"]["dimension"] == 8
    assert not (sweep_dir / str(BROKEN) / "error.json").exists()
    assert "12 of 12 sweep points ok" in r.stdout


def test_resume_without_a_sweep_dir_finds_the_latest_sweep_with_the_same_overrides(work):
    args = ("validate", "tiny.yaml", "-m", "model.modules.1.pooling_mode=mean,cls")
    r = stpipe(work, *args, "resume=true")
    assert r.returncode == 2 and "hydra.sweep.dir=DIR" in r.stderr  # nothing to resume yet
    r = stpipe(work, *args)
    assert r.returncode == 0, r.stderr
    (sweep_dir,) = (work / "multirun").glob("*/*")  # Hydra's default: multirun/<date>/<time>
    assert sorted(jobs(sweep_dir)) == [0, 1] and (sweep_dir / "1" / "metrics.json").is_file()
    r = stpipe(work, *args, "resume=true")
    assert r.returncode == 0 and r.stdout.count("skipped (resume)") == 2
    assert f"sweep directory: {sweep_dir.relative_to(work)}" in r.stdout


def test_joblib_with_two_workers_gives_the_basic_launchers_metrics(basic_sweep, work):
    sweep_dir, _ = basic_sweep
    r = stpipe(work, "encode", "tiny.yaml", "-m", *SWEEP, "inputs=in.txt", "output=e.npy",
               "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={work / 'joblib'}")
    assert r.returncode == 0, r.stderr
    assert "Joblib" in r.stdout + r.stderr  # Hydra's joblib launcher ran the jobs
    basic, parallel = metrics(sweep_dir), metrics(work / "joblib")
    assert len(parallel) == 12 and len(basic) >= 11  # the broken point of the basic sweep: fixed by resume or not
    assert {k: parallel[k] for k in basic} == basic
    for num in (n for n, job in jobs(sweep_dir).items() if (job / "metrics.json").is_file()):
        a, b = np.load(sweep_dir / str(num) / "e.npy"), np.load(work / "joblib" / str(num) / "e.npy")
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("launcher", [("hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"),
                                      ("hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=1")],
                         ids=["submitit_local", "ray"])
def test_submitit_and_ray_launchers_run_a_two_point_sweep(work, launcher):
    name = launcher[0].rpartition("=")[2]
    r = stpipe(work, "encode", "tiny.yaml", "-m", "model.modules.1.pooling_mode=mean,cls", "inputs=in.txt",
               "output=e.npy", *launcher, f"hydra.sweep.dir={work / name}")
    assert r.returncode == 0, r.stderr
    assert ("Submitit" if name.startswith("submitit") else "Ray") in r.stdout + r.stderr
    got = metrics(work / name)
    assert len(got) == 2 and all(m == {"dimension": 32, "inputs": 3} for m in got.values())
    for job in jobs(work / name).values():
        assert np.load(job / "e.npy").shape == (3, 32)


def test_the_optuna_preset_runs_six_trials_and_reports_its_best_point(work):
    r = stpipe(work, "encode", "tiny.yaml", "-m", "+experiment=optuna_search", "metric=dimension",
               "truncate_dim=choice(4,8,16)", "inputs=in.txt", "output=e.npy", f"hydra.sweep.dir={work / 'optuna'}")
    assert r.returncode == 0, r.stderr
    assert sorted(jobs(work / "optuna")) == list(range(6))
    dims = [m["dimension"] for m in metrics(work / "optuna").values()]
    assert len(dims) == 6 or len(set(metrics(work / "optuna"))) < 6  # a point Optuna sampled twice counts once
    best = yaml.safe_load((work / "optuna" / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(dims)  # maximised what each job returned: its dimension
    assert best["best_params"]["truncate_dim"] == max(dims)
    assert best["best_params"]["model.modules.1.pooling_mode"] in ("mean", "cls", "max")
    assert "best point" in r.stdout and "6 of 6 sweep points ok" in r.stdout


def test_validate_and_export_sweeps_write_their_job_dirs(work):
    # include_prompt: a key of Pooling's schema tiny.yaml does not write; stpipe applies it as +key, so does Hydra
    r = stpipe(work, "validate", "tiny.yaml", "-m", "model.modules.1.include_prompt=false,true",
               f"hydra.sweep.dir={work / 'validate'}")
    assert r.returncode == 0, r.stderr
    for num, value in ((0, False), (1, True)):
        definition = yaml.safe_load((work / "validate" / str(num) / "definition.yaml").read_text())
        assert definition["modules"][1]["include_prompt"] is value
        assert json.loads((work / "validate" / str(num) / "metrics.json").read_text())["metrics"] == {}
    r = stpipe(work, "export", "tiny.yaml", "-m", "model.modules.1.pooling_mode=mean,cls", "out=model",
               f"hydra.sweep.dir={work / 'export'}")
    assert r.returncode == 0, r.stderr
    for num, mode in ((0, "mean"), (1, "cls")):  # a relative out= goes into each point's directory
        pooling = json.loads((work / "export" / str(num) / "model" / "1_Pooling" / "config.json").read_text())
        assert pooling["pooling_mode"] == mode



def test_optuna_without_a_direction_maximises_spearman_and_picks_mean_pooling(work, minilm_dir):
    from stpipe.resources import dataset_file

    lines = dataset_file("stsb-dev").read_text(encoding="utf-8").splitlines()[:30]
    (work / "dev30.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = stpipe(work, "evaluate", "-m", "model=minilm", "data=stsb-dev", "data.path=dev30.tsv", "data.format=stsb",
               "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", "model.modules.1.pooling_mode=choice(mean,cls)",
               f"hydra.sweep.dir={work / 'optuna-dir'}")
    assert r.returncode == 0, r.stderr[-3000:]
    got = {k: v["spearman_cosine"] for k, v in metrics(work / "optuna-dir").items()}
    assert len(got) == 2 and max(got.values()) > min(got.values())
    best = yaml.safe_load((work / "optuna-dir" / "optimization_results.yaml").read_text())
    assert best["best_params"]["model.modules.1.pooling_mode"] == "mean"  # MiniLM was trained with mean pooling
    assert best["best_value"] == max(got.values())
    assert "optuna: maximize" in r.stdout
    both = r.stdout + r.stderr  # the set-up lines are not repeated at the user
    assert "setup plugin" not in both and "Study name" not in both and "A new study created" not in both, both
