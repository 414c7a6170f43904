"""Overrides and the config tree as Hydra composes them (:mod:`stpipe.config.overrides`): every mistake reported in
stpipe's own words — unknown keys with "did you mean", syntax, sweeps outside -m, missing options, broken or hostile
YAML in the config directory."""

from __future__ import annotations

import pytest

from stpipe.config.compose import compose
from stpipe.errors import ConfigError

from .conftest import SMALL, problems


def test_bad_override_keys_all_reported_with_did_you_mean(conf):
    with pytest.raises(ConfigError) as ei:
        compose(None, ["model.modules.1.poolng_mode=cls", "batch_sise=3", "model.modules.7.x=1"], config_dir=conf)
    assert problems(ei) == [
        ("override.unknown-key", "model.modules[1].poolng_mode", "override `model.modules.1.poolng_mode=cls`",
         "did you mean 'pooling_mode'? to add a new key write +model.modules.1.poolng_mode=…"),
        ("override.unknown-key", "batch_sise", "override `batch_sise=3`",
         "did you mean 'batch_size'? to add a new key write +batch_sise=…"),
        ("override.unknown-key", "model.modules[7].x", "override `model.modules.7.x=1`", None)]
    assert ei.value.problems[2].message == "model.modules is a list of 3 items; '7' is not one of its indexes"
    assert "Traceback" not in ei.value.render() and "hydra" not in ei.value.render().lower()


def test_golden_override_message(conf):
    with pytest.raises(ConfigError) as ei:
        compose(None, ["model.modules.1.poolng_mode=cls"], config_dir=conf)
    assert ei.value.render() == """\
invalid overrides: 1 problem
error [override.unknown-key] model.modules[1].poolng_mode: 'poolng_mode' is not a key of model.modules.1
    at override `model.modules.1.poolng_mode=cls`
    expected: one of: type, pooling_mode, id, load_from, embedding_dimension, include_prompt
    hint: did you mean 'pooling_mode'? to add a new key write +model.modules.1.poolng_mode=…"""


def test_missing_option_syntax_sweep_exists_interpolation(conf):
    with pytest.raises(ConfigError) as ei:
        compose(None, ["model=smal"], config_dir=conf)
    assert problems(ei) == [("override.unknown-option", "model", "override `model=smal`",
                             "did you mean 'small'? available model options: other, small")]
    with pytest.raises(ConfigError) as ei:
        compose(None, ["batch_size==", "device"], config_dir=conf)
    assert ei.value.codes == ["override.syntax", "override.syntax"]
    with pytest.raises(ConfigError) as ei:
        compose(None, ["batch_size=1,2"], config_dir=conf)
    assert ei.value.codes == ["override.sweep"]
    with pytest.raises(ConfigError) as ei:
        compose(None, ["+batch_size=3"], config_dir=conf)
    assert ei.value.codes == ["override.exists"]
    with pytest.raises(ConfigError) as ei:
        compose(None, ["model.name=${nope}"], config_dir=conf)
    assert [(p.code, p.path_str) for p in ei.value.problems] == [("yaml.interpolation", "model.name")]


def test_broken_yaml_in_the_config_tree(conf):
    bad = "name: small\nmodules:\n  - type: Pooling\n   pooling_mode: mean\n"
    (conf / "model" / "small.yaml").write_text(bad)
    with pytest.raises(ConfigError) as ei:
        compose(None, [], config_dir=conf)
    assert [(p.code, p.source) for p in ei.value.problems] == [
        ("yaml.syntax", f"{conf / 'model' / 'small.yaml'}:4:4")]


def test_config_dir_without_config_yaml(tmp_path):
    with pytest.raises(ConfigError) as ei:
        compose(None, [], config_dir=tmp_path)
    assert [(p.code, p.message) for p in ei.value.problems] == [("yaml.not-found", f"no config.yaml in {tmp_path}")]


def test_a_key_the_schema_has_needs_no_plus(conf):
    c = compose(None, ["model.modules.1.include_prompt=false"], config_dir=conf)
    assert c.definition["modules"][1] == {"type": "Pooling", "pooling_mode": "mean", "include_prompt": False}
    assert c.sources[("modules", 1, "include_prompt")] == "override `model.modules.1.include_prompt=false`"
    c = compose(None, ["model.truncate_dim=8"], config_dir=conf)
    assert c.definition["truncate_dim"] == 8


def test_unknown_key_lists_the_schema_keys(conf):
    with pytest.raises(ConfigError) as info:
        compose(None, ["model.modules.1.include_promt=false"], config_dir=conf)
    p = info.value.problems[0]
    assert p.code == "override.unknown-key" and "include_prompt" in p.expected and "did you mean 'include_prompt'" \
        in p.hint


def test_an_alias_bomb_in_the_config_directory_is_refused(conf):
    """Hydra reads conf/ itself; stpipe checks those files first. Run in a subprocess with a memory limit so that a
    regression fails instead of exhausting the machine."""
    import subprocess
    import sys

    bomb = "a: &a [" + ", ".join(["x"] * 9) + "]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    (conf / "model" / "small.yaml").write_text(SMALL + bomb)
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
            "from stpipe.config.compose import compose\nfrom stpipe.errors import ConfigError\n"
            f"try:\n    compose(None, [], config_dir={str(conf)!r})\n"
            "except ConfigError as e:\n    print(e.problems[0].code, e.problems[0].source)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith(f"yaml.alias-bomb {conf / 'model' / 'small.yaml'}:")
