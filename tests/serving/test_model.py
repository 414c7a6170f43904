"""A served model's request checks: a model that takes images refuses strings it would open as media (decided from
the string alone); a text-only model embeds them as text; per-request dimensions/normalize on merged calls."""

from __future__ import annotations

import numpy as np
import pytest

from stpipe.serving.model import ServedModel
from stpipe.serving.protocol import EmbeddingsRequest, HTTPError

from .conftest import specs_for


@pytest.fixture(scope="module")
def clip_yaml(tmp_path_factory, tiny_clip_dir):
    f = tmp_path_factory.mktemp("serve-clip") / "clip.yaml"
    f.write_text(f"name: tiny-clip\nmodules:\n  - {{type: Transformer, model_name_or_path: {tiny_clip_dir}}}\n")
    return f


@pytest.fixture(scope="module")
def clip(clip_yaml) -> ServedModel:
    return served({"clip": clip_yaml}, "clip")


def served(files, name) -> ServedModel:
    specs, _ = specs_for(files, [name])
    m = ServedModel(specs[0])
    m.load()
    return m


@pytest.mark.parametrize("text, param", [("cat.png", "input[1]"), ("https://example.com/a.jpg?x=1", "input[1]"),
                                          ("data:image/png;base64,iVBORw0KGgo=", "input[1]"),
                                          ("https://youtu.be/abc", "input[1]")])
def test_a_model_taking_images_refuses_media_like_strings(clip, text, param):
    m = clip
    assert m.takes_media
    with pytest.raises(HTTPError) as e:
        m.check_embeddings(EmbeddingsRequest(model="clip", texts=["a photo of a cat", text], single=False))
    assert e.value.status == 422 and e.value.param == param and "text only" in e.value.message


def test_a_model_taking_images_embeds_plain_text(clip):
    m = clip
    key = m.check_embeddings(EmbeddingsRequest(model="clip", texts=["a photo of a cat"], single=False))
    rows = m.run_embeddings(key, [(EmbeddingsRequest(model="clip", texts=["a photo of a cat"], single=False), 1)])
    assert np.abs(rows[0] - m.model.encode(["a photo of a cat"])).max() <= 1e-6


def test_a_text_model_embeds_a_file_name_as_text(model_files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cat.png").write_bytes(b"not an image")  # never opened: the model takes text only
    m = served(model_files, "emb")
    assert not m.takes_media
    reqs = [EmbeddingsRequest(model="emb", texts=["cat.png", "a cat"], single=False, dimensions=5, normalize=True),
            EmbeddingsRequest(model="emb", texts=["a dog"], single=False)]
    key = m.check_embeddings(reqs[0])
    rows = m.run_embeddings(key, [(r, 1) for r in reqs])  # one merged call, split back with each request's options
    assert np.abs(rows[0] - m.model.encode(["cat.png", "a cat"], truncate_dim=5, normalize_embeddings=True)
                  ).max() <= 1e-6
    assert np.abs(rows[1] - m.model.encode(["a dog"])).max() <= 1e-6
