"""Audio (and video) inputs: a tiny wav2vec2, audio Router routes, file decoding, errors with the input index."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from conftest import make_standins, write_tiny_bert

from stpipe import build
from stpipe.modules.audio import unwrap_audio, unwrap_video
from stpipe.modules.modality import infer_modality

RNG = np.random.default_rng(0)
WAVES = [RNG.standard_normal(n).astype("float32") for n in (4000, 6400, 2400)]
AUDIO = [WAVES[0], {"array": WAVES[1], "sampling_rate": 16000}, WAVES[2]]


@pytest.fixture(scope="module")
def w2v(tmp_path_factory):
    return make_standins.write_tiny_wav2vec2(tmp_path_factory.mktemp("w2v"))


@pytest.fixture(scope="module")
def text32(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("bert32"))


def _st_audio(w2v):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    return SentenceTransformer(modules=[Transformer(str(w2v)), Pooling(32, "mean")], device="cpu")


@pytest.mark.slow
def test_audio_embeddings_match_sentence_transformers(w2v):
    ref = _st_audio(w2v)
    ours = build({"modules": [{"type": "Transformer", "model_name_or_path": str(w2v)},
                              {"type": "Pooling", "pooling_mode": "mean"}]}, device="cpu")
    assert ours[0].modality_config == ref[0].modality_config  # the audio-encoder table: audio, audio+text
    assert ours.modalities == ["audio", ("audio", "text")]
    a, b = ref.encode(AUDIO, batch_size=2), ours.encode(AUDIO, batch_size=2)
    assert a.shape == b.shape == (3, 32) and np.abs(a - b).max() <= 1e-5
    with pytest.raises(ValueError, match=r"^input 1 is text: Modality 'text' is not supported by this "
                                         r"SentenceTransformer model. Supported modalities: audio, audio\+text.$"):
        ours.encode([WAVES[0], "hello"])
    with pytest.raises(ValueError, match=r"mixes audio with different sampling rates \(8000 and 16000\)"):
        ours.encode([{"array": WAVES[0], "sampling_rate": 16000}, {"array": WAVES[1], "sampling_rate": 8000}])


@pytest.mark.slow
def test_router_with_an_audio_route_and_a_text_route_matches_sentence_transformers(w2v, text32):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Router as STRouter
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    ref = SentenceTransformer(modules=[STRouter({"audio": [Transformer(str(w2v)), Pooling(32, "mean")],
                                                 "text": [Transformer(str(text32)), Pooling(32, "mean")]},
                                                default_route="text")], device="cpu")
    ours = build({"modules": [{"type": "Router", "default_route": "text",
                               "route_mappings": [{"task": "query", "route": "text"}], "sub_modules": {
        "audio": [{"type": "Transformer", "model_name_or_path": str(w2v)}, {"type": "Pooling"}],
        "text": [{"type": "Transformer", "model_name_or_path": str(text32)}, {"type": "Pooling"}]}}]}, device="cpu")
    mixed = ["a cat", WAVES[0], "the weather in paris", {"array": WAVES[1], "sampling_rate": 16000}]
    # sentence-transformers: one modality per call (padding changes wav2vec2's output, so the same batches), and
    # its Router reads a dict's keys as tasks (so a raw array there)
    texts, waves = ref.encode([mixed[0], mixed[2]]), ref.encode([WAVES[0], WAVES[1]])
    a = np.stack([texts[0], waves[0], texts[1], waves[1]])
    b = ours.encode(mixed, batch_size=4)  # stpipe splits a mixed call by modality
    assert b.shape == (4, 32) and np.abs(a - b).max() <= 1e-5
    # task=query maps to the text route: audio sent there is refused, with its index
    with pytest.raises(ValueError, match=r"^input 1 is audio, but it resolves to route 'text', whose Transformer does "
                                         r"not take it.*Route 'audio' takes audio: add a route_mappings entry"):
        ours.encode(["a cat", WAVES[0]], task="query")


@pytest.mark.slow
def test_audio_files_are_decoded_with_torchcodec_or_refused_with_what_to_install(w2v, tmp_path, monkeypatch):
    import soundfile

    wav = tmp_path / "a.wav"
    soundfile.write(wav, WAVES[0], 16000)
    ours = build({"modules": [{"type": "Transformer", "model_name_or_path": str(w2v)},
                              {"type": "Pooling", "pooling_mode": "mean"}]}, device="cpu")
    assert infer_modality(str(wav), ["audio"]) == "audio" and infer_modality(str(wav), ["text"]) == "text"
    assert infer_modality(str(tmp_path / "missing.wav"), ["audio"]) == "text"  # a path counts only if it exists
    monkeypatch.setitem(sys.modules, "torchcodec", None)  # not installed (whether or not it is here)
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)
    with pytest.raises(ValueError, match=r"^input 1 \('.*a\.wav'\): cannot decode a media file: decoding audio and "
                                         r"video files needs torchcodec.*pip install 'stpipe\[audio\]'"):
        ours.encode([WAVES[1], str(wav)])

    class Samples:  # what torchcodec's AudioDecoder.get_all_samples returns: (channels, samples) + rate
        def __init__(self, path):
            data, rate = soundfile.read(path, dtype="float32")
            self.data, self.sample_rate = torch.from_numpy(np.stack([data, data])), rate

    class AudioDecoder:
        def __init__(self, path):
            self.path = path

        def get_all_samples(self):
            return Samples(self.path)

    fake = types.ModuleType("torchcodec.decoders")
    fake.AudioDecoder, fake.VideoDecoder = AudioDecoder, type("VideoDecoder", (), {})
    monkeypatch.setitem(sys.modules, "torchcodec", types.ModuleType("torchcodec"))
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", fake)
    from_file = ours.encode([str(wav)])
    from_array = ours.encode([{"array": soundfile.read(wav, dtype="float32")[0], "sampling_rate": 16000}])
    assert np.abs(from_file - from_array).max() <= 1e-6
    assert infer_modality(AudioDecoder(str(wav))) == "audio"
    with pytest.raises(ValueError, match="stpipe runs offline"):
        unwrap_audio("https://example.com/a.wav", {})


def test_modality_inference_follows_the_reference_order():
    assert [infer_modality(x) for x in (np.zeros(3), np.zeros((2, 3)), np.zeros((4, 4, 3)), np.zeros((2, 3, 4, 4)),
                                        torch.zeros(1, 2, 3, 4, 4))] == ["audio", "audio", "image", "video", "video"]
    assert infer_modality({"array": [0.0], "sampling_rate": 8000}) == "audio"
    assert infer_modality({"array": [], "video_metadata": {}}) == "video"
    assert infer_modality({"audio": WAVES[0], "text": "x"}) == ("audio", "text")
    assert infer_modality({"role": "user", "content": "hi"}) == "message"
    with pytest.raises(ValueError, match="'array' key must also include 'sampling_rate'"):
        infer_modality({"array": [0.0]})
    with pytest.raises(ValueError, match="attach the sampling rate to the audio itself"):
        infer_modality({"audio": [0.0], "sampling_rate": 1})
    with pytest.raises(ValueError, match="Unsupported tensor dimensionality: 6D"):
        infer_modality(np.zeros((1,) * 6))
    extra: dict = {}  # video: metadata travels as a list aligned with the videos
    frames = np.zeros((2, 3, 4, 4))
    assert unwrap_video({"array": frames, "video_metadata": {"fps": 2}}, extra) is frames
    assert extra == {"video": {"video_metadata": [{"fps": 2}]}}
