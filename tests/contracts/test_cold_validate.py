"""A cold ``stpipe validate`` does only what validation needs (timing: ``benchmarks/validate_time.py``).

One composition: Hydra is initialised without its plugin scan (which imports every installed launcher and
sweeper) unless the composition needs a plugin's configs, and then composes exactly as with the scan. The
registry reads the ``stpipe.modules`` entry points (``importlib.metadata``) only for a name it does not know.
YAML is read with libyaml's parser, values and errors as with PyYAML's (the one Hydra uses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stpipe import registry
from stpipe.config import sources
from stpipe.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _run(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a fresh interpreter
def test_cold_validate_imports_no_hydra_plugin_nor_entry_point_metadata():
    # nor Hydra's launcher/sweeper plugins (its own config group is not composed) nor the training code
    loaded = _run("import contextlib, io, json, sys\n"
                  "from stpipe.cli import main\n"
                  "with contextlib.redirect_stdout(io.StringIO()):\n"
                  "    assert main(['validate', 'model=minilm']) == 0\n"
                  "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('hydra_plugins', "
                  "'importlib.metadata', 'hydra._internal.core_plugins.basic_', 'stpipe.training')))))")
    assert loaded == []


_COMPOSE = """
import json
from pathlib import Path
from omegaconf import OmegaConf
from stpipe.config.overrides import compose_config, plugins_scanned
from stpipe.resources import conf_dir

conf = Path(conf_dir())
cases = [["model=minilm"], ["model=sparse", "batch_size=8"], ["+experiment=pooling_ablation", "data=stsb-dev"],
         ["model.modules.1.include_prompt=false"]]
fast = [OmegaConf.to_container(compose_config(conf, c)) for c in cases]
scanned_by_fast = plugins_scanned()
optuna = compose_config(conf, ["+experiment=optuna_search"])  # the optuna sweeper's config: a plugin's
scanned_by_optuna = plugins_scanned()
full = [OmegaConf.to_container(compose_config(conf, c)) for c in cases]
print(json.dumps({"same": fast == full, "scanned_by_fast": scanned_by_fast, "scanned_by_optuna": scanned_by_optuna,
                  "sweeper": optuna.hydra.sweeper._target_}))
"""


@pytest.mark.slow  # a fresh interpreter
def test_composition_without_the_plugin_scan_is_the_same_and_falls_back_for_plugin_configs():
    result = _run(_COMPOSE)
    assert result["scanned_by_fast"] is False  # none of these needed Hydra's plugins
    assert result["same"] is True  # …and they compose exactly as after the scan
    assert result["scanned_by_optuna"] is True and "optuna" in result["sweeper"].lower()


def test_entry_points_are_read_only_for_an_unknown_name(monkeypatch):
    calls = []
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "entry_points", lambda group: calls.append(group) or [])
    assert registry.find("Pooling").name == "Pooling"
    assert registry.find("sentence_transformers.models.Dense").name == "Dense"
    assert calls == []
    assert registry.find("NoSuchType") is None
    assert calls == [registry.ENTRY_POINT_GROUP]


@pytest.mark.parametrize("text", [
    "a: 1e-5\nb: 2001-12-14\nc: [yes, no, ~, .inf, 0x1F, '007']\nd: {e: &x [1, 2], f: *x}\n",
    "modules:\n  - type: Pooling\n    pooling_mode: mean\n  - {type: Normalize}\n",
    "# only a comment\n",
    "key: value\nkey: again\n",  # duplicate key
    "a:\n\t- 1\n",  # a tab
    "a: [1, 2\n",  # unclosed
    "a: b: c\n",
    "x: &a [*a]\n",  # an alias inside its own anchor
])
def test_libyaml_reading_gives_what_pyyaml_gives(text):
    def outcome(read):
        try:
            return read()
        except ConfigError as exc:
            return [(p.code, p.message, p.source) for p in exc.problems]

    assert sources._fast_loader_class() is not None  # PyYAML with libyaml (its wheels bundle it)
    fast = outcome(lambda: sources.parse_yaml(text, "f.yaml"))
    slow = outcome(lambda: sources._parse_with(sources._loader_class(), text, "f.yaml"))
    assert fast == slow
