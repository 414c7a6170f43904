"""A model file's ``defaults:`` list (Hydra's) may only compose other model files: it cannot choose a sweeper,
launcher, experiment preset, output directory or run setting (``yaml.model-defaults``)."""

from __future__ import annotations

import pytest

from stpipe.config.compose import compose
from stpipe.errors import ConfigError

EVIL_DEFAULTS = """\
defaults:
  - /experiment@_global_: optuna_search
  - _self_
name: evil
modules:
  - {type: Transformer, model_name_or_path: all-MiniLM-L6-v2}
  - {type: Pooling}
"""


def test_a_model_files_defaults_may_only_compose_other_model_files(tmp_path):
    (tmp_path / "evil.yaml").write_text(EVIL_DEFAULTS)
    with pytest.raises(ConfigError) as exc:
        compose(str(tmp_path / "evil.yaml"))
    p = exc.value.problems[0]
    assert p.code == "yaml.model-defaults" and p.path == ("defaults", 0) and "evil.yaml:2" in p.source
    assert "cannot choose launchers, sweepers" in p.message and "+experiment=NAME" in p.hint
    (tmp_path / "derived.yaml").write_text("defaults:\n  - minilm\n  - _self_\nname: derived\n")
    c = compose(str(tmp_path / "derived.yaml"))  # another model file of the group: still allowed
    assert c.definition["name"] == "derived" and c.definition["modules"][1]["pooling_mode"] == "mean"


@pytest.mark.slow
def test_a_model_file_cannot_switch_a_sweep_to_another_sweeper(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "evil.yaml").write_text(EVIL_DEFAULTS)
    r = subprocess.run([sys.executable, "-m", "stpipe", "validate", "-m", "evil.yaml",
                        "model.modules.1.pooling_mode=mean,cls", "hydra.sweep.dir=s"], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert r.returncode == 2 and "yaml.model-defaults" in r.stderr and "evil.yaml:2" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "s").exists()
