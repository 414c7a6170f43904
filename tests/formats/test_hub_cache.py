"""A whole model in the Hugging Face cache layout (``models--org--name/snapshots/<rev>/``) loads offline by its
hub id, in stpipe as in sentence-transformers, with ``cache_folder`` and ``revision``."""

from __future__ import annotations

import numpy as np
import pytest

import stpipe
from stpipe.errors import LoadError

TEXTS = ["a cat is on the house", "what is the weather in paris now?"]
REV = "a" * 40


@pytest.fixture(scope="module")
def cache(tmp_path_factory, tiny_bert_dir):
    """A sentence-transformers model saved by the oracle, laid out as a hub cache entry ``org/tiny-st``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    torch.manual_seed(0)
    st = SentenceTransformer(modules=[Transformer(str(tiny_bert_dir)), Pooling(32, "mean"), Dense(32, 8),
                                      Normalize()], device="cpu")
    root = tmp_path_factory.mktemp("hf-cache")
    repo = root / "models--org--tiny-st"
    snap = repo / "snapshots" / REV
    st.save(str(snap))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REV)
    return root, st


def test_hub_id_loads_from_the_cache_offline(cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root, st = cache
    pipe = stpipe.load("org/tiny-st", cache_folder=str(root), local_files_only=True, device="cpu")
    assert np.abs(pipe.encode(TEXTS) - st.encode(TEXTS)).max() <= 1e-5
    pipe = stpipe.load("org/tiny-st", cache_folder=str(root), revision=REV, local_files_only=True, device="cpu")
    assert np.abs(pipe.encode(TEXTS) - st.encode(TEXTS)).max() <= 1e-5


def test_missing_hub_id_is_a_load_error(cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root, _ = cache
    with pytest.raises(LoadError, match="org/not-there"):
        stpipe.load("org/not-there", cache_folder=str(root), local_files_only=True)


def test_cache_copy_is_not_mutated_by_loading(cache):
    root, _ = cache
    before = sorted(p.name for p in (root / "models--org--tiny-st" / "snapshots" / REV).rglob("*"))
    stpipe.load("org/tiny-st", cache_folder=str(root), local_files_only=True, device="cpu")
    after = sorted(p.name for p in (root / "models--org--tiny-st" / "snapshots" / REV).rglob("*"))
    assert before == after


def test_a_definition_naming_a_cached_hub_id_validates_and_builds_from_the_snapshot_without_network(cache,
                                                                                                   monkeypatch):
    """The cached snapshot is found by the one resolver (stpipe.resources.locate_model) in validation and build,
    and loaded as a local directory: even online, no connection is attempted (no update checks, no retries)."""
    import socket

    import huggingface_hub.constants

    root, st = cache
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    connects: list[object] = []

    def connect(self, address):
        connects.append(address)
        raise ConnectionRefusedError("the test forbids the network")

    monkeypatch.setattr(socket.socket, "connect", connect)
    definition = {"modules": [{"type": "Transformer", "model_name_or_path": "org/tiny-st"}, {"type": "Pooling"},
                              {"type": "Dense", "load_from": str(root / "models--org--tiny-st" / "snapshots" / REV /
                                                                 "2_Dense")}, {"type": "Normalize"}]}
    stpipe.validate(definition)  # Pooling's and Dense's dimensions follow from the cached config.json
    pipe = stpipe.build(definition, device="cpu")
    assert pipe[0].model_name_or_path == str(root / "models--org--tiny-st" / "snapshots" / REV)
    assert np.abs(pipe.encode(TEXTS) - st.encode(TEXTS)).max() <= 1e-5
    assert connects == []
