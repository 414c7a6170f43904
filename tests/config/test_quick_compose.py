"""A single composition: without Hydra's own config group, with only the optional groups its verb reads, each YAML
file read once — and the same verdicts as Hydra's full composition (timing: ``benchmarks/validate_time.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from stpipe.commands import verb_groups
from stpipe.commands.common import compose_checked
from stpipe.config import sources
from stpipe.config.compose import compose
from stpipe.config.hydra_quick import hydra_settings_valid
from stpipe.config.overrides import compose_config
from stpipe.errors import ConfigError
from stpipe.resources import conf_dir

CASES = [["model=minilm"], ["model=sparse", "batch_size=8"], ["data=stsb-dev", "loss=cosent"],
         ["model.modules.1.include_prompt=false"], ["training.epochs=3", "training.freeze=[a]"],
         ["inputs.path=x.txt", "shard.index=1", "shard.count=2"]]


@pytest.mark.parametrize("overrides", CASES)
def test_a_single_composition_is_hydras_without_its_own_group(overrides):
    conf = Path(conf_dir())
    quick = OmegaConf.to_container(compose_config(conf, overrides, hydra_group=False), resolve=False)
    full = OmegaConf.to_container(compose_config(conf, overrides), resolve=False)
    quick_hydra, full_hydra = quick.pop("hydra"), full.pop("hydra")
    assert quick == full
    assert quick_hydra == {"runtime": {"choices": {k: v for k, v in full_hydra["runtime"]["choices"].items()
                                                   if not k.startswith("hydra/")}}}


def _conf(tmp_path: Path, hydra: str) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "config.yaml").write_text("defaults:\n  - model: small\n  - _self_\n\nbatch_size: 32\nhydra:\n"
                                          + hydra)
    (tmp_path / "model" / "small.yaml").write_text(
        "name: small\nmodules:\n  - {type: Transformer, model_name_or_path: enc}\n  - {type: Pooling}\n")
    return tmp_path


@pytest.mark.parametrize(("hydra", "valid"), [
    ("  job:\n    chdir: false\n  sweep:\n    dir: runs/${now:%H-%M}\n", True),
    ("  job:\n    chdri: false\n", False),  # no such key of JobConf
    ("  job:\n    chdir: sometimes\n", False),  # not a bool
])
def test_the_hydra_settings_of_the_files_are_still_checked(tmp_path, hydra, valid):
    conf = _conf(tmp_path, hydra)
    assert hydra_settings_valid(OmegaConf.create(OmegaConf.load(conf / "config.yaml").hydra)) is valid
    if valid:
        assert compose(None, [], config_dir=conf).run == {"batch_size": 32}
    else:  # Hydra's own composition gives the verdict
        with pytest.raises(ConfigError, match="raised while composing config"):
            compose(None, [], config_dir=conf)


def test_a_verb_composes_the_optional_groups_it_reads_and_those_an_override_names():
    assert verb_groups("train") == ("training", "loss", "data") and verb_groups("evaluate") == ("data",)
    assert verb_groups("validate") == verb_groups("encode") == ()
    assert "training" not in compose(None, [], groups=()).run
    assert compose(None, [], groups=("training",)).run["training"]["learning_rate"] == 2e-5
    assert compose(None, []).run["training"]["epochs"] == 1  # no groups given: all as conf/config.yaml picks them
    assert compose(None, ["training.epochs=3"], groups=()).run["training"]["epochs"] == 3
    assert "training" not in compose_checked(None, ["batch_size=8"], "validate").run


def test_validate_checks_the_training_settings_an_override_names(capsys):
    from stpipe.cli import main

    assert main(["validate", "training.learning_rate=abc", "training.freeze=['(']"]) == 2
    err = capsys.readouterr().err
    assert "invalid training settings: 2 problems" in err
    assert "training.learning_rate: expected number, found string" in err
    assert "at override `training.learning_rate=abc`" in err and "[training.regex] training.freeze" in err
    assert main(["validate", "training.learning_rate=3e-5"]) == 0


def test_a_yaml_file_is_read_once_and_handed_out_as_copies(tmp_path, monkeypatch):
    calls = []
    parse = sources.parse_yaml
    monkeypatch.setattr(sources, "parse_yaml", lambda text, name: calls.append(name) or parse(text, name))
    f = tmp_path / "m.yaml"
    f.write_text("modules:\n  - {type: Pooling}\n")
    data, src = sources.load_yaml(f)
    data["modules"].append("mutated")
    src[("x",)] = "mutated"
    again, src_again = sources.load_yaml(f)
    assert again == {"modules": [{"type": "Pooling"}]} and ("x",) not in src_again and len(calls) == 1
    f.write_text("modules:\n  - {type: Normalize}\n")  # changed (size): read again
    assert sources.load_yaml(f)[0] == {"modules": [{"type": "Normalize"}]} and len(calls) == 2
