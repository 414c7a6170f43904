"""compose()/sweep_points(): Hydra composition on a temporary conf dir, sources, and Hydra errors as problems."""

from __future__ import annotations

import pytest
import yaml

from stpipe.config.compose import Composed, compose, sweep_points
from stpipe.config.validate import validate
from stpipe.errors import ConfigError

from .conftest import CONFIG, OTHER, SMALL, _pos, problems


def test_default_model(conf):
    c = compose(None, [], config_dir=conf)
    assert c.definition == yaml.safe_load(SMALL)
    assert c.run == {"batch_size": 32, "device": "cpu"}
    assert c.model_file == conf / "model" / "small.yaml" and c.base_dir == conf / "model"
    f = conf / "model" / "small.yaml"
    assert c.sources[("modules", 1, "pooling_mode")] == f"{f}:{_pos(SMALL, 'pooling_mode')}"
    assert c.sources.lookup(("modules", 0, "model_name_or_path")) == f"{f}:{_pos(SMALL, 'model_name_or_path')}"


def test_choose_model_by_override_or_argument(conf):
    assert compose(None, ["model=other"], config_dir=conf).definition == yaml.safe_load(OTHER)
    c = compose("other", ["batch_size=8"], config_dir=conf)
    assert c.definition == yaml.safe_load(OTHER) and c.run["batch_size"] == 8
    assert c.sources[("modules", 1, "pooling_mode")].endswith(f"other.yaml:{_pos(OTHER, 'pooling_mode')}")


def test_overrides_apply_and_become_the_source(conf):
    c = compose(None, ["model.modules.1.pooling_mode=cls", "+model.modules.1.include_prompt=false"],
                config_dir=conf)
    assert c.definition["modules"][1] == {"type": "Pooling", "pooling_mode": "cls", "include_prompt": False}
    assert c.sources[("modules", 1, "pooling_mode")] == "override `model.modules.1.pooling_mode=cls`"
    assert c.sources[("modules", 1, "include_prompt")] == "override `+model.modules.1.include_prompt=false`"
    assert c.sources[("modules", 1, "type")].endswith(f"small.yaml:{_pos(SMALL, 'type: Pooling')}")


def test_user_yaml_file(conf, tmp_path):
    f = tmp_path / "mine" / "m.yaml"
    f.parent.mkdir()
    f.write_text(OTHER)
    c = compose(str(f), ["model.modules.1.pooling_mode=max", "device=cuda"], config_dir=conf)
    assert c.definition["modules"][1]["pooling_mode"] == "max" and c.run["device"] == "cuda"
    assert c.base_dir == f.parent.resolve() and c.model_file == f
    assert c.sources[("modules", 0, "type")] == f"{f}:{_pos(OTHER, 'type: Transformer')}"
    assert c.sources[("modules", 1, "pooling_mode")] == "override `model.modules.1.pooling_mode=max`"
    with pytest.raises(ConfigError) as ei:
        compose(str(f), ["model=small"], config_dir=conf)
    assert ei.value.codes == ["override.conflict"]


def test_user_yaml_errors(conf, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("modules:\n  - type: Pooling\n   pooling_mode: mean\n")
    with pytest.raises(ConfigError) as ei:
        compose(str(f), [], config_dir=conf)
    assert ei.value.codes == ["yaml.syntax"] and ei.value.problems[0].source.startswith(f"{f}:3:")
    f.write_text("- just a list\n")
    with pytest.raises(ConfigError) as ei:
        compose(str(f), [], config_dir=conf)
    assert ei.value.codes == ["schema.type"]
    with pytest.raises(ConfigError) as ei:
        compose(str(tmp_path / "missing.yaml"), [], config_dir=conf)
    assert ei.value.codes == ["yaml.not-found"]


def test_model_argument_kinds(conf, tmp_path):
    with pytest.raises(ConfigError) as ei:
        compose("othr", [], config_dir=conf)
    assert ei.value.codes == ["override.unknown-option"] and ei.value.problems[0].hint.startswith(
        "did you mean 'other'?")


def test_saved_model_directory_becomes_a_definition_with_overrides_applied(conf, tiny_bert_dir):
    """A saved model (here a plain Hugging Face directory: Transformer + mean Pooling) is composed like a file."""
    c = compose(str(tiny_bert_dir), ["model.modules.1.pooling_mode=cls", "batch_size=4"], config_dir=conf)
    assert c.saved_model == str(tiny_bert_dir) and c.run["batch_size"] == 4
    assert [m["type"] for m in c.definition["modules"]] == ["Transformer", "Pooling"]
    assert c.definition["modules"][1]["pooling_mode"] == "cls"
    assert c.sources.lookup(("modules", 1, "pooling_mode")) == "override `model.modules.1.pooling_mode=cls`"
    assert c.sources.lookup(("modules", 0)) == f"saved model {tiny_bert_dir}"
    with pytest.raises(ConfigError) as ei:
        compose(str(tiny_bert_dir), ["model=other"], config_dir=conf)
    assert ei.value.codes == ["override.conflict"]


def test_saved_model_directory_that_is_broken(conf, tmp_path):
    from stpipe.errors import LoadError

    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "modules.json").write_text("[]")
    with pytest.raises(LoadError, match="modules.json"):
        compose(str(saved), ["model.modules.0.x=1"], config_dir=conf)


def test_global_hydra_state_of_the_caller_is_kept(conf, tmp_path):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    other = tmp_path / "other_conf"
    other.mkdir()
    with initialize_config_dir(config_dir=str(other), version_base=None):
        compose(None, [], config_dir=conf)
        gh = GlobalHydra.instance()
        assert gh.is_initialized()
        paths = [e.path for e in gh.hydra.config_loader.get_search_path().get_path()]
        assert str(other) in paths and str(conf) not in paths
    assert not GlobalHydra.instance().is_initialized()


def test_override_problems_reach_validation(conf, tiny_bert_dir):
    c = compose(None, [f"model.modules.0.model_name_or_path={tiny_bert_dir}", "model.modules.1.pooling_mode=meen"],
                config_dir=conf)
    with pytest.raises(ConfigError) as ei:
        validate(c.definition, sources=c.sources, base_dir=c.base_dir)
    assert problems(ei) == [("schema.enum", "modules[1].pooling_mode", "override `model.modules.1.pooling_mode=meen`",
                             "did you mean 'mean'?")]


# ----------------------------------------------------------------------------- sweeps
def test_sweep_points_expand_and_validate_each_point(conf, tiny_bert_dir):
    points = sweep_points(None, [f"model.modules.0.model_name_or_path={tiny_bert_dir}",
                                 "model.modules.1.pooling_mode=mean,meen", "batch_size=range(1,3)"],
                          config_dir=conf)
    assert [p[1:] for p, _ in points] == [
        ["model.modules.1.pooling_mode=mean", "batch_size=1"], ["model.modules.1.pooling_mode=mean", "batch_size=2"],
        ["model.modules.1.pooling_mode=meen", "batch_size=1"], ["model.modules.1.pooling_mode=meen", "batch_size=2"]]
    ok = [r for _, r in points if not isinstance(r, ConfigError)]
    assert [c.run["batch_size"] for c in ok] == [1, 2]
    bad = points[2][1]
    assert isinstance(bad, ConfigError)
    (p,) = bad.problems
    assert p.code == "schema.enum"
    # the label names what the point sweeps, not the overrides every point shares
    assert p.source == "sweep point 2 (model.modules.1.pooling_mode=meen batch_size=1); override " \
                       "`model.modules.1.pooling_mode=meen`"


def test_sweep_over_a_saved_model_validates_every_point(conf, tiny_bert_dir):
    points = sweep_points(str(tiny_bert_dir), ["model.modules.1.pooling_mode=cls,meen"], config_dir=conf)
    assert isinstance(points[0][1], Composed) and points[0][1].definition["modules"][1]["pooling_mode"] == "cls"
    bad = points[1][1]
    assert isinstance(bad, ConfigError)
    assert [(p.code, p.path_str, p.hint) for p in bad.problems] == [
        ("schema.enum", "modules[1].pooling_mode", "did you mean 'mean'?")]


def test_sweep_choice_and_bad_points(conf):
    points = sweep_points(None, ["model=choice(small,other,nope)"], config_dir=conf, validate=False)
    assert [p for p, _ in points] == [["model=small"], ["model=other"], ["model=nope"]]
    assert [type(r).__name__ for _, r in points] == ["Composed", "Composed", "ConfigError"]
    assert points[2][1].problems[0].source == "sweep point 2 (model=nope); override `model=nope`"
    with pytest.raises(ConfigError) as ei:
        sweep_points(None, ["batch_size=interval(0,1)"], config_dir=conf)
    assert ei.value.codes == ["override.sweep"]


# ----------------------------------------------------------------------------- run settings
@pytest.mark.parametrize("override, code, hint", [
    ("batch_size=abc", "schema.type", None),
    ("batch_size=0", "schema.range", None),
    ("truncate_dim=abc", "schema.type", None),
    ("truncate_dim=0", "schema.range", None),
    ("prompt=3", "schema.type", "Hydra reads 3 or true as a number or boolean; to pass it as text quote it: "
                                "\"prompt='3'\""),
    ("device=banana", "schema.pattern", "cpu, cuda, cuda:N (N: the GPU index) or mps; null picks cuda when available"),
    ("device=cdua", "schema.pattern", "did you mean 'cuda'?; cpu, cuda, cuda:N (N: the GPU index) or mps; null picks "
                                      "cuda when available"),
    ("normalize_embeddings=maybe", "schema.type", "true or false"),
    ("precision=int4", "schema.enum", "did you mean 'int8'?"),
    ("modality=[image,txt]", "schema.enum", "did you mean 'text'?"),
    ("+batch_sise=3", "schema.unknown-key", "did you mean 'batch_size'?"),
])
def test_run_settings_are_checked_in_compose(override, code, hint):
    """stpipe's own conf/: every run setting against schemas/run.schema.json, the override named as the source."""
    with pytest.raises(ConfigError) as ei:
        compose(None, [override])
    assert ei.value.title == "invalid run settings"
    key = override.lstrip("+").split("=")[0]
    (p,) = ei.value.problems
    assert (p.code, p.path_str.split("[")[0], p.source, p.hint) == (code, key, f"override `{override}`", hint)


def test_good_run_settings_pass(conf):
    c = compose(None, ["device=cuda:1", "precision=ubinary", "modality=image+text", "prompt='3'", "truncate_dim=8"])
    assert (c.run["device"], c.run["prompt"], c.run["truncate_dim"]) == ("cuda:1", "3", 8)
    assert compose(None, ["+extra=1"], config_dir=conf).run["extra"] == 1  # a caller's conf/ may hold its own keys


def test_run_setting_from_the_config_file_names_its_line(conf):
    (conf / "config.yaml").write_text(CONFIG.replace("batch_size: 32", "batch_size: many"))
    with pytest.raises(ConfigError) as ei:
        compose(None, [], config_dir=conf)
    assert [(p.code, p.source) for p in ei.value.problems] == [("schema.type", f"{conf / 'config.yaml'}:5:1")]
    points = sweep_points(None, ["batch_size=1,x"], config_dir=conf, validate=False)  # each point labelled
    assert isinstance(points[0][1], Composed) and points[0][1].run["batch_size"] == 1
    assert [(p.code, p.source) for p in points[1][1].problems] == [
        ("schema.type", "sweep point 1 (batch_size=x); override `batch_size=x`")]


def test_model_choice_is_a_name_never_a_path(conf, tmp_path):
    (tmp_path / "x.yaml").write_text(OTHER)
    with pytest.raises(ConfigError) as info:
        compose(None, ["model=../../x"], config_dir=conf)
    p = info.value.problems[0]
    assert (p.code, p.path_str, p.source) == ("override.unknown-option", "model", "override `model=../../x`")
    assert "MODEL argument" in p.hint

