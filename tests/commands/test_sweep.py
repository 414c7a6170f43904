"""Sweep plumbing without running a sweep: presets compose, a missing plugin names its extra, job output paths."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from stpipe.commands.common import in_job_dir
from stpipe.commands.sweep import PLUGINS, _point_overrides, check_plugins
from stpipe.config.overrides import compose_config
from stpipe.resources import conf_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("name", "sweeper", "params"), [
    ("pooling_ablation", "basic", {"model.modules.1.pooling_mode": "mean,cls,max,lasttoken"}),
    ("matryoshka_dims", "basic", {"truncate_dim": "32,64,128,256,384"}),
    ("optuna_search", "optuna", {"model.modules.1.pooling_mode": "choice(mean, cls, max)",
                                 "truncate_dim": "choice(64, 128, 256, 384)"}),
])
def test_every_experiment_preset_composes_with_its_sweep(name, sweeper, params):
    cfg = compose_config(Path(conf_dir()), [f"+experiment={name}"])
    assert OmegaConf.select(cfg, "hydra.runtime.choices.hydra/sweeper") == sweeper
    assert OmegaConf.to_container(cfg.hydra.sweeper.params) == params
    if sweeper == "optuna":
        assert cfg.hydra.sweeper.direction == "maximize" and cfg.hydra.sweeper.n_trials == 6


def test_the_presets_are_the_shipped_ones():
    assert sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")) == [
        "matryoshka_dims", "optuna_search", "pooling_ablation"]


def test_every_plugin_of_the_extras_is_installed_in_dev():
    for module, _ in PLUGINS.values():
        assert __import__(module, fromlist=["_"]) is not None


def test_a_missing_plugin_names_the_extra(monkeypatch):
    from stpipe.errors import UsageError

    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_joblib_launcher", None)  # as if not installed
    with pytest.raises(UsageError, match=r"pip install 'stpipe\[sweep\]'"):
        check_plugins(["hydra/launcher=joblib"], Path(conf_dir()))
    check_plugins(["hydra/launcher=basic", "batch_size=1,2"], Path(conf_dir()))  # Hydra's own: nothing to install
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_ray_launcher", None)
    with pytest.raises(UsageError, match=r"stpipe\[ray\]"):
        check_plugins(["hydra/launcher=ray"], Path(conf_dir()))
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_optuna_sweeper", None)
    with pytest.raises(UsageError, match=r"hydra/sweeper=optuna .*stpipe\[sweep\]"):
        check_plugins(["+experiment=optuna_search"], Path(conf_dir()))  # the preset picks the sweeper


@pytest.mark.slow
@pytest.mark.parametrize(("args", "extra"), [(("hydra/launcher=submitit_local",), "sweep"),
                                             (("+experiment=optuna_search",), "sweep"),
                                             (("hydra/launcher=ray",), "ray")])
def test_the_stpipe_command_says_which_extra_to_install(tmp_path, args, extra):
    hide = ("import sys\nfor m in ('hydra_submitit_launcher', 'hydra_optuna_sweeper', 'hydra_ray_launcher'):\n"
            "    sys.modules['hydra_plugins.' + m] = None\n"
            "from stpipe.cli import main\nsys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", hide, "validate", "-m", "model.modules.1.pooling_mode=mean,cls", *args,
                        f"hydra.sweep.dir={tmp_path / 's'}"], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert r.returncode == 2, r.stderr
    assert f"pip install 'stpipe[{extra}]'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s").exists()


def test_a_jobs_overrides_as_the_user_wrote_them():
    assert _point_overrides(["model=_file_0123456789ab", "truncate_dim=8", "resume=true", "+experiment=x"]) == [
        "truncate_dim=8", "+experiment=x"]


def test_sweep_outputs_go_into_the_job_directory(tmp_path):
    job = tmp_path / "multirun" / "3"
    assert in_job_dir("e.npy", job) == str(job / "e.npy")
    assert in_job_dir("out/e.npy", job) == str(job / "out" / "e.npy")
    assert in_job_dir("/data/e.npy", job) == "/data/e.3.npy"  # an absolute path: numbered, as before
    assert in_job_dir("/data/model", job) == "/data/model/3"
    assert in_job_dir("e.npy", None) == "e.npy"  # not a sweep


def test_the_summary_of_a_sweep_survives_a_damaged_error_json_and_escapes_values(tmp_path, capsys):
    import json

    from stpipe.commands.sweep import _summary

    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "error.json").write_text('{"error": "X", "message": "cut')  # truncated
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "error.json").write_text(json.dumps({"error": "ConfigError", "message": "a\nFAIL  forged",
                                                           "overrides": ["k=v\x1b[2K"]}))
    assert _summary(tmp_path) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("FAIL  point 0 (): unreadable: error.json:")
    assert err[1] == "FAIL  point 1 (k=v\\x1b[2K): ConfigError: a\\nFAIL  forged" and len(err) == 3
def test_experiments_and_training_never_import_the_commands():
    """Layers import downward: the verbs (cli.py, commands/ — the sweep orchestration included) use experiments/
    and training/, never the other way round, counting imports inside functions."""
    package = Path(__file__).parents[2] / "stpipe"
    upward = []
    for room in ("experiments", "training"):
        for path in (package / room).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                if any(n.startswith(("stpipe.commands", "stpipe.cli")) for n in names):
                    upward.append(f"{path.relative_to(package)}:{node.lineno}")
    assert upward == []
