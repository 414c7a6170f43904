"""The model class a Transformer loads (stpipe/modules/transformer_classes.py): encoder–decoder architectures under
``feature-extraction`` load as their encoder, as sentence-transformers 6.2 does, with the checkpoint's weights."""

from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers.base.modules import Transformer as STTransformer

from stpipe.modules.transformer import Transformer
from tests.modules.architectures_build import build_tiny

TEXTS = ["the cat runs in paris", "a dog"]


def _encode(module, texts=TEXTS):
    with torch.no_grad():
        return module(module.preprocess(list(texts)))["token_embeddings"]


@pytest.fixture(scope="module")
def seq2seq(tmp_path_factory):
    """Tiny random whole seq2seq models (``T5Model``, ``PegasusModel`` …) saved with a WordPiece tokenizer."""
    root = tmp_path_factory.mktemp("seq2seq")
    built = {}
    for model_type in ("t5", "mt5", "pegasus", "marian", "m2m_100", "blenderbot-small", "prophetnet"):
        assert build_tiny(model_type, "feature-extraction", root / model_type) is None
        built[model_type] = root / model_type
    return built


@pytest.mark.parametrize("model_type, encoder", [
    ("t5", "T5EncoderModel"), ("mt5", "MT5EncoderModel"), ("pegasus", "PegasusEncoder"),
    ("marian", "MarianEncoder"), ("m2m_100", "M2M100Encoder"), ("blenderbot-small", "BlenderbotSmallEncoder"),
    ("prophetnet", "ProphetNetEncoder")])
def test_seq2seq_feature_extraction_loads_the_trained_encoder(seq2seq, model_type, encoder):
    """The class sentence-transformers loads, token embeddings out, and the checkpoint's encoder weights: the
    output equals the whole model's own encoder (sentence-transformers leaves Pegasus & co. at random init)."""
    from transformers import AutoModel

    folder = seq2seq[model_type]
    ours, ref = Transformer(str(folder)).eval(), STTransformer(str(folder)).eval()
    assert type(ours.model).__name__ == type(ref.model).__name__ == encoder
    got = _encode(ours)
    features = ours.preprocess(TEXTS)
    with torch.no_grad():
        whole = AutoModel.from_pretrained(folder).eval().get_encoder()
        expected = whole(input_ids=features["input_ids"], attention_mask=features["attention_mask"])[0]
    assert got.shape == (2, features["input_ids"].shape[1], 32)
    assert (got - expected).abs().max() <= 1e-5
    assert got.shape == _encode(ref).shape


@pytest.mark.parametrize("model_type", ["t5", "pegasus"])
def test_saved_encoder_reloads_as_the_encoder_both_ways(seq2seq, model_type, tmp_path):
    """A saved encoder (architectures: [T5EncoderModel], is_encoder_decoder: false) reloads as the encoder with the
    same weights, from a folder stpipe saved and from one sentence-transformers saved."""
    ours, ref = Transformer(str(seq2seq[model_type])).eval(), STTransformer(str(seq2seq[model_type])).eval()
    a, b = tmp_path / "stpipe", tmp_path / "st"
    ours.save(str(a))
    b.mkdir()
    ref.save(str(b))
    saved = json.loads((a / "config.json").read_text())
    assert saved["architectures"] == [type(ours.model).__name__]
    if model_type == "t5":
        assert saved["is_encoder_decoder"] is False
    for folder, source in ((a, ours), (b, ref)):
        for loaded in (Transformer.load(str(folder)).eval(), STTransformer.load(str(folder)).eval()):
            assert type(loaded.model).__name__ == type(source.model).__name__
            assert (_encode(loaded) - _encode(source)).abs().max() <= 1e-5


def test_other_tasks_keep_the_whole_model(seq2seq):
    """Only feature-extraction takes the encoder: sequence-classification loads the whole seq2seq classifier."""
    ours = Transformer(str(seq2seq["t5"]), transformer_task="sequence-classification")
    assert type(ours.model).__name__ == "T5ForSequenceClassification"


def test_whisper_loads_its_encoder(tmp_path):
    """Whisper under feature-extraction: WhisperEncoder with the checkpoint's weights, as sentence-transformers
    picks it (its forward would otherwise ask for decoder inputs)."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    cfg = WhisperConfig(vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=8,
                        max_source_positions=50, max_target_positions=16, pad_token_id=0, bos_token_id=1,
                        eos_token_id=2, decoder_start_token_id=1)
    torch.manual_seed(0)
    WhisperModel(cfg).eval().save_pretrained(tmp_path)
    WhisperFeatureExtractor(feature_size=8, chunk_length=1, hop_length=160, n_fft=64).save_pretrained(tmp_path)
    ours, ref = Transformer(str(tmp_path)).eval(), STTransformer(str(tmp_path)).eval()
    assert type(ours.model).__name__ == type(ref.model).__name__ == "WhisperEncoder"
    whole = WhisperModel.from_pretrained(tmp_path).eval()
    assert torch.equal(ours.model.conv1.weight, whole.encoder.conv1.weight)
