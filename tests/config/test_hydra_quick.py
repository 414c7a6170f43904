"""Hydra set up for stpipe (:mod:`stpipe.config.hydra_quick`). A single composition: without Hydra's own config
group, with only the optional groups its verb reads, each YAML file read once — and the same verdicts as Hydra's full
composition (timing: ``benchmarks/validate_time.py``). Then the compatibility check of every private Hydra name that
module relies on, against the pinned Hydra range."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from stpipe.commands import verb_groups
from stpipe.commands.common import compose_checked
from stpipe.config import hydra_quick, sources
from stpipe.config.compose import compose
from stpipe.config.hydra_quick import hydra_settings_valid
from stpipe.config.overrides import compose_config, parse_overrides
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


# Hydra's private API: every name stpipe/config/hydra_quick.py relies on, with the shape it is used in. A Hydra
# release that moves or reshapes one fails here (pyproject pins hydra-core>=1.3.2,<1.4), not in a user's run.

def _params(func: object) -> list[str]:
    return [p for p in inspect.signature(func).parameters if p != "self"]  # type: ignore[arg-type]


@pytest.mark.parametrize(("module", "name", "params"), [
    ("hydra._internal.config_loader_impl", "ConfigLoaderImpl._parse_overrides_and_create_caching_repo",
     ["config_name", "overrides"]),
    ("hydra._internal.config_loader_impl", "ConfigLoaderImpl._compose_config_from_defaults_list", ["defaults", "repo"]),
    ("hydra._internal.config_loader_impl", "ConfigLoaderImpl._apply_overrides_to_config", ["overrides", "cfg"]),
    ("hydra._internal.config_loader_impl", "ConfigLoaderImpl.validate_sweep_overrides_legal",
     ["overrides", "run_mode", "from_shell"]),
    ("hydra._internal.config_loader_impl", "ConfigLoaderImpl.ensure_main_config_source_available", []),
    ("hydra._internal.defaults_list", "create_defaults_list",
     ["repo", "config_name", "overrides_list", "prepend_hydra", "skip_missing"]),
    ("hydra._internal.hydra", "Hydra.create_main_hydra2", ["task_name", "config_search_path"]),
    ("hydra._internal.hydra", "Hydra.multirun",
     ["config_name", "task_function", "overrides", "with_log_configuration"]),
    ("hydra._internal.core_plugins.basic_sweeper", "BasicSweeper.split_arguments", ["overrides", "max_batch_size"]),
    ("hydra._internal.core_plugins.file_config_source", "FileConfigSource.__init__", ["provider", "path"]),
    ("hydra._internal.core_plugins.file_config_source", "FileConfigSource._normalize_file_name", ["filename"]),
    ("hydra._internal.core_plugins.file_config_source", "FileConfigSource.load_config", ["config_path"]),
    ("hydra._internal.core_plugins.structured_config_source", "StructuredConfigSource.load_config", ["config_path"]),
    ("hydra._internal.core_plugins.importlib_resources_config_source", "ImportlibResourcesConfigSource.load_config",
     ["config_path"]),
    ("hydra._internal.config_search_path_impl", "ConfigSearchPathImpl.append", ["provider", "path", "anchor"]),
    ("hydra._internal.sources_registry", "SourcesRegistry.register", ["type_"]),
    ("hydra.core.plugins", "Plugins._scan_all_plugins", ["modules"]),
    ("hydra.plugins.config_source", "ConfigSource._get_header_dict", ["config_text"]),
    ("hydra.initialize", "get_gh_backup", []),
    ("hydra.initialize", "restore_gh_from_backup", ["_gh_backup"]),
    ("hydra.version", "setbase", ["ver"]),
])
def test_each_private_hydra_function_has_the_parameters_used(module, name, params):
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    assert _params(obj) == params, f"{module}.{name}{inspect.signature(obj)} changed: adapt hydra_quick.py"


def test_the_private_hydra_classes_and_attributes_used_are_there():
    import hydra._internal.core_plugins as core_plugins
    from hydra._internal.core_plugins.file_config_source import FileConfigSource
    from hydra._internal.core_plugins.structured_config_source import StructuredConfigSource
    from hydra._internal.sources_registry import SourcesRegistry
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton
    from hydra.plugins.config_source import ConfigResult, ConfigSource

    assert issubclass(FileConfigSource, ConfigSource) and issubclass(StructuredConfigSource, ConfigSource)
    assert hydra_quick.StructuredConfigSource.__name__ == "StructuredConfigSource"  # Hydra checks it by name
    assert [f.name for f in dataclasses.fields(ConfigResult)][:4] == ["provider", "path", "config", "header"]
    assert isinstance(Singleton._instances, dict)
    assert isinstance(SourcesRegistry.instance().types, dict)
    scanned = Plugins._scan_all_plugins(modules=[core_plugins])[0]
    names = {c.__name__ for c in scanned if issubclass(c, ConfigSource)}
    assert {"FileConfigSource", "ImportlibResourcesConfigSource", "StructuredConfigSource"} <= names
    assert ConfigSource._get_header_dict("# @package _global_\n") == {"package": "_global_"}


def test_the_private_composition_gives_hydras_result(tmp_path):
    """Defaults list, config overrides, known choices and the HydraConf schema node, as compose_without_hydra_group
    and hydra_settings_valid read them (the quick composition's comparison with hydra.compose is above)."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra

    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "a.yaml").write_text("x: 1\n")
    (tmp_path / "config.yaml").write_text("defaults:\n  - g: a\n  - _self_\ny: 2\n")
    with hydra_quick.hydra_on(tmp_path, plugins=False, quick=True):
        cfg = hydra_quick.compose_without_hydra_group(["y=3", "+z=4"])
        assert isinstance(GlobalHydra.instance().hydra, object) and GlobalHydra.instance().hydra is not None
        assert OmegaConf.to_container(cfg) == {"g": {"x": 1}, "y": 3, "z": 4, "hydra": {"runtime": {"choices": {
            "g": "a"}}}}
    assert "hydra" in ConfigStore.instance().repo and "config.yaml" in ConfigStore.instance().repo["hydra"]


def test_sweep_combinations_in_the_basic_sweepers_order():
    parsed = parse_overrides(["a=1,2", "b=x,y"])
    assert hydra_quick.sweep_combinations(parsed) == [["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"],
                                                      ["a=2", "b=y"]]
    assert hydra_quick.sweep_combinations([]) == [[]]


def test_multirun_runs_the_task_once_per_point(tmp_path):
    (tmp_path / "config.yaml").write_text("a: 0\n")
    seen: list[int] = []
    with hydra_quick.hydra_on(tmp_path):
        hydra_quick.run_multirun(lambda cfg: seen.append(cfg.a),
                                 ["a=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra/job_logging=none",
                                  "hydra/hydra_logging=none"])
    assert sorted(seen) == [1, 2] and (tmp_path / "sweep" / "1" / ".hydra" / "overrides.yaml").is_file()


def test_omegaconfs_private_yaml_loader_is_there():
    """config/sources.py reads YAML with OmegaConf's loader (its private get_yaml_loader): the same values as Hydra."""
    from omegaconf._utils import get_yaml_loader

    assert sources._loader_class().__qualname__ == get_yaml_loader().__qualname__ == \
        "get_yaml_loader.<locals>.OmegaConfLoader"  # not the silent yaml.SafeLoader fallback


def test_no_other_module_imports_hydras_private_modules():
    """The one door: hydra._internal (and hydra.initialize's backup helpers) are imported by hydra_quick.py alone."""
    package = Path(hydra_quick.__file__).parents[1]
    offenders = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.startswith(("hydra._internal", "hydra.initialize")) for n in names) \
                    and path.name != "hydra_quick.py":
                offenders.append(f"{path.relative_to(package)}:{node.lineno}")
    assert offenders == []
