"""Every YAML file stpipe ships (under conf/ and examples/, recursively) is checked: model definitions
validate, carry the yaml-language-server modeline that points editors at the schema, and build; Hydra
group files compose."""

from __future__ import annotations

from pathlib import Path

import pytest

import stpipe
from stpipe.config.compose import compose
from stpipe.resources import conf_dir

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p for root in ("conf", "examples") for p in (REPO / root).rglob("*.y*ml"))
MODELS = [p for p in SHIPPED if p.parent == REPO / "conf" / "model" or "examples" in p.parts]
MODELINE = "# yaml-language-server: $schema="


def test_something_is_shipped():
    assert REPO / "conf" / "config.yaml" in SHIPPED and len(MODELS) >= 5


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_yaml_composes(path, standins):
    rel = path.relative_to(REPO / "conf") if path.is_relative_to(REPO / "conf") else None
    if rel is None:
        composed = compose(path)  # an example model definition, as `stpipe VERB path.yaml` would use it
    elif len(rel.parts) == 1:
        composed = compose(None)
    else:
        add = "+" if rel.parts[0] == "experiment" else ""  # presets are not in the defaults: +experiment=NAME
        composed = compose(None, [f"{add}{rel.parts[0]}={rel.with_suffix('').name}"])
    assert composed.run["batch_size"] > 0


@pytest.mark.parametrize("path", MODELS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_model_definition_validates_and_points_to_the_schema(path, standins, monkeypatch):
    first = path.read_text().splitlines()[0]
    assert first.startswith(MODELINE)
    schema = (path.parent / first.removeprefix(MODELINE).strip()).resolve()
    assert schema == (REPO / "schemas" / "pipeline.schema.json").resolve()
    if path.is_relative_to(REPO / "examples" / "plugin"):  # its module type comes from the example plugin
        monkeypatch.syspath_prepend(str(REPO / "examples" / "plugin"))
        from stpipe_scale import Scale

        for table in ("_specs", "_aliases"):  # registered for this test only
            monkeypatch.setattr(stpipe.registry, table, dict(getattr(stpipe.registry, table)))
        stpipe.register(Scale)
    definition = stpipe.validate(path)
    assert definition["modules"]


@pytest.mark.parametrize("name", ["minilm", "asymmetric", "sparse", "multimodal", "hybrid", "audio_text",
                                  "chat_embedder"])
def test_every_model_of_the_group_builds_and_encodes(name, standins):
    pipe = stpipe.build(conf_dir() / "model" / f"{name}.yaml")
    out = pipe.encode_query(["What is the capital of France?"])
    assert out.shape[0] == 1
