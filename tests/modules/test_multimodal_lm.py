"""``any-to-any`` on a real multimodal LM (a tiny LLaVA: CLIP vision tower + Llama), and video input parsing,
against sentence-transformers 6.2.

Video *outputs* cannot be compared here: every transformers video processor (``BaseVideoProcessor``) needs
torchvision, and the only torchvision wheel this machine has is a CUDA build that does not load with the CPU torch,
so sentence-transformers 6.2 routes no model as ``video`` (a VideoMAE processor is an image processor to it). What
is compared is the input side both share: modality inference, unwrapping, the per-video metadata and the chat
conversations a chat model's template gets.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import make_standins
from PIL import Image

from stpipe import build
from stpipe.modules.transformer import Transformer
from stpipe.modules.transformer_inputs import parse_inputs

HIDDEN = {"method": "forward", "method_output_name": ["hidden_states", -1]}


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    """The tiny LLaVA with its chat template, and the same model whose processor has none."""
    chat = make_standins.write_tiny_llava(tmp_path_factory.mktemp("llava") / "chat")
    plain = chat.parent / "plain"
    shutil.copytree(chat, plain)
    (plain / "chat_template.jinja").unlink()
    return chat, plain


def _images(n: int) -> list[Image.Image]:
    rs = np.random.RandomState(0)
    return [Image.fromarray(rs.randint(0, 255, (20 + 4 * i, 24, 3)).astype(np.uint8)) for i in range(n)]


@pytest.mark.slow
def test_any_to_any_multimodal_lm_matches_sentence_transformers(llava, tmp_path):
    """Features, causal_logits, last-token embeddings and CrossEncoder scores on the same LLaVA weights: texts,
    PIL images, 3-D arrays, {text, image} dicts, conversations with image items, mixed batches, (text, image)
    pairs. The chat template puts every batch through ``message`` (with ``num_images_per_sample``), and
    ``processing_kwargs.image`` reaches the image processor there."""
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from sentence_transformers.base.modules import Transformer as STTransformer
    from sentence_transformers.cross_encoder.modules.logit_score import LogitScore as STLogitScore
    from sentence_transformers.sentence_transformer.modules import Pooling as STPooling

    chat, _ = llava
    ims = _images(3)
    conv = [{"role": "user", "content": [{"type": "image", "image": ims[0]}, {"type": "text", "text": "what"}]}]
    batches = [["hello world", "a cat"], ims[:2], [np.asarray(ims[2].resize((16, 16))).transpose(2, 0, 1)],
               [{"text": "a cat", "image": ims[0]}, {"text": "dog", "image": ims[1]}], [conv],
               ["hello", ims[1]], [("a cat", "the cat sits"), ("what is it", ims[0])]]
    ims[0].save(tmp_path / "cat.png")
    batches.append([str(tmp_path / "cat.png"), "a cat"])  # an image file by path (a chat batch: an image item)
    ref_t = STTransformer(str(chat), transformer_task="any-to-any").eval()
    ours_t = Transformer(str(chat), transformer_task="any-to-any").eval()
    assert type(ours_t.model).__name__ == "LlavaForConditionalGeneration"
    assert ours_t.modality_config == ref_t.modality_config and set(ours_t.modality_config) == {"text", "image",
                                                                                               "message"}
    with torch.inference_mode():
        for inputs in batches:
            a, b = ref_t.preprocess(inputs, prompt="sys: "), ours_t.preprocess(inputs, prompt="sys: ")
            assert sorted(a) == sorted(b), inputs
            assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))
            diff = (ref_t(a)["causal_logits"] - ours_t(b)["causal_logits"]).abs().max()
            assert diff <= 1e-5
        raw = {"image": {"do_normalize": False}}  # reaches the image processor through the chat template
        a, b = ref_t.preprocess(ims, processing_kwargs=raw), ours_t.preprocess(ims, processing_kwargs=raw)
        assert torch.equal(a["pixel_values"], b["pixel_values"])
        assert not torch.equal(b["pixel_values"], ours_t.preprocess(ims)["pixel_values"])
    kw = dict(transformer_task="any-to-any", module_output_name="token_embeddings",
              modality_config={"text": HIDDEN, "image": HIDDEN, "message": {**HIDDEN, "format": "structured"}})
    ours = build({"modules": [{"type": "Transformer", "model_name_or_path": str(chat), **kw},
                              {"type": "Pooling", "pooling_mode": "lasttoken"}]}, device="cpu")
    ours.save(str(tmp_path / "saved"))  # sentence-transformers loads what stpipe saves
    ref = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert isinstance(ref[0], STTransformer) and isinstance(ref[1], STPooling)
    assert ref[0].modality_config == ours[0].modality_config and ref[1].pooling_mode == "lasttoken"
    # conversations in a call of their own: sentence-transformers 6.2 wraps a conversation that shares a batch with
    # other inputs into a {"type": "message"} content item, which the template drops (stpipe keeps its turns)
    for inputs in (["what is this?", *ims, {"text": "a cat", "image": ims[0]}], [conv, conv[:1] * 2]):
        a, b = ref.encode(inputs, batch_size=3), ours.encode(inputs, batch_size=3)
        assert a.shape == b.shape == (len(inputs), 32) and np.abs(a - b).max() <= 1e-5
    with pytest.raises(ValueError, match=r"^input 1 \('http://h/x.png'\): 'http://h/x.png' is a URL; stpipe runs "
                                         r"offline"):
        ours.encode(["a", "http://h/x.png"])
    ref_ce = CrossEncoder(modules=[STTransformer(str(chat), transformer_task="any-to-any"), STLogitScore(5, 6)],
                          device="cpu")
    ours_ce = build({"model_type": "CrossEncoder", "modules": [
        {"type": "Transformer", "model_name_or_path": str(chat), "transformer_task": "any-to-any"},
        {"type": "LogitScore", "true_token_id": 5, "false_token_id": 6}]}, device="cpu")
    docs = ["the cat sits", ims[0], {"text": "a dog", "image": ims[1]}]
    a, b = ref_ce.predict([("a cat", d) for d in docs], batch_size=2), ours_ce.predict([("a cat", d) for d in docs],
                                                                                       batch_size=2)
    assert np.abs(a - b).max() <= 1e-5
    assert [r["corpus_id"] for r in ref_ce.rank("a cat", docs)] == [r["corpus_id"] for r in ours_ce.rank("a cat",
                                                                                                          docs)]


@pytest.mark.slow
def test_any_to_any_without_chat_template_matches_and_refuses_lone_images(llava):
    """No chat template: texts and an 'image+text' modality_config match sentence-transformers; an image alone
    gives the model no prompt tokens (sentence-transformers fails inside the model), which stpipe refuses first."""
    from sentence_transformers.base.modules import Transformer as STTransformer

    _, plain = llava
    ims = _images(2)
    logits = {"method": "forward", "method_output_name": "logits"}
    ref_t = STTransformer(str(plain), transformer_task="any-to-any", module_output_name="causal_logits",
                          modality_config={"text": logits, ("image", "text"): logits}).eval()
    ours_t = Transformer(str(plain), transformer_task="any-to-any", module_output_name="causal_logits",
                         modality_config={"text": logits, "image+text": logits}).eval()
    with torch.inference_mode():
        for inputs in (["hello", "a cat sits"], [{"text": "a <image> cat", "image": ims[0]},
                                                 {"text": "<image> dog", "image": ims[1]}]):
            a, b = ref_t.preprocess(inputs), ours_t.preprocess(inputs)
            assert sorted(a) == sorted(b) and torch.equal(a["input_ids"], b["input_ids"])
            assert (ref_t(a)["causal_logits"] - ours_t(b)["causal_logits"]).abs().max() <= 1e-5
    model = build({"modules": [{"type": "Transformer", "model_name_or_path": str(plain),
                                "transformer_task": "any-to-any", "module_output_name": "token_embeddings",
                                "modality_config": {"text": HIDDEN, "image": HIDDEN}},
                               {"type": "Pooling", "pooling_mode": "lasttoken"}]}, device="cpu")
    assert model.encode(["a cat"]).shape == (1, 32)
    with pytest.raises(ValueError, match=r"^input 1 is image alone, but this any-to-any model's processor has no "
                                         r"chat template .* no input_ids.*chat_template"):
        model.encode(["a cat", ims[0]] * 2)  # a mixed batch is refused anyway; the per-input check comes first
    with pytest.raises(ValueError, match=r"^input 0 is image alone"):
        model[0].preprocess([ims[1]])


@pytest.mark.slow
def test_media_the_processor_cannot_take_are_refused_with_their_index(llava):
    """A chat-template model puts a video into a ``{"type": "video"}`` content item that LLaVA's processor (no video
    processor) leaves out: sentence-transformers returns an embedding of the rest, stpipe names the input."""
    chat, _ = llava
    model = build({"model_type": "CrossEncoder", "modules": [
        {"type": "Transformer", "model_name_or_path": str(chat), "transformer_task": "any-to-any"},
        {"type": "LogitScore", "true_token_id": 5}]}, device="cpu")
    video = np.zeros((4, 3, 16, 16), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"^input 1 carries video, but this Transformer's processor has no video "
                                         r"processor \(it takes text, image\)"):
        model.predict([("a", "b"), ("a clip", video)])
    conv = [{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "video", "video": video}]}]
    with pytest.raises(ValueError, match=r"^input 0 carries video"):
        model[0].preprocess([conv, "a"])
    audio = {"text": "hear", "audio": {"array": np.zeros(800, dtype=np.float32), "sampling_rate": 16000}}
    with pytest.raises(ValueError, match=r"^input 2 carries audio, but .* no audio processor"):
        model[0].preprocess(["a", _images(1)[0], audio])
    # a conversation sharing a batch with other inputs keeps its turns (sentence-transformers 6.2 drops them)
    ids = model[0].preprocess(["a", [{"role": "user", "content": "hi there"}]])["input_ids"][1]
    assert "userhithere" in model[0].tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "")


def _shapes(v):
    if isinstance(v, (list, tuple)):
        return [_shapes(x) for x in v]
    if isinstance(v, dict):
        return {k: _shapes(x) for k, x in sorted(v.items())}
    if isinstance(v, Image.Image):
        return ("image", v.size)
    return ("array", tuple(v.shape)) if hasattr(v, "shape") else v


def test_video_inputs_parse_as_sentence_transformers_parses_them():
    """4-D/5-D arrays, frame lists (in ``{"video": …}`` or ``{"array": …}``), several videos in one input,
    ``{array, video_metadata}`` and {text, video} dicts: the same modality, the same unwrapped videos and the same
    per-video metadata (metadata missing next to given metadata: each video's own frame count)."""
    from sentence_transformers.base.modality import InputFormatter

    def frame():
        return Image.new("RGB", (8, 8))

    clip, meta = np.zeros((5, 3, 8, 8), dtype=np.uint8), {"fps": 2.0, "total_num_frames": 5}
    batches = [[clip, torch.zeros(1, 4, 3, 8, 8)], [{"array": clip, "video_metadata": meta}, clip],
               [{"video": [frame(), frame(), frame()]}, {"video": {"array": clip, "video_metadata": meta}}],
               [{"video": {"array": [frame(), frame()], "video_metadata": None}}, {"array": clip,
                                                                                     "video_metadata": meta}],
               [{"video": [clip, clip]}, {"video": {"array": clip, "video_metadata": meta}}],
               [{"video": [frame()] * 3, "text": "a"}, {"text": "b", "video": {"array": clip, "video_metadata": meta}}]]
    supported = ["text", "video", ("text", "video")]
    config = {m: {"method": "forward", "method_output_name": "last_hidden_state"} for m in supported}
    for inputs in batches:
        modality, columns, extra = InputFormatter("x", "structured", None, supported).parse_inputs(inputs)
        ours, our_modality, our_extra = parse_inputs(list(inputs), config)
        assert our_modality == modality
        if isinstance(modality, tuple):
            ours = {m: [x[m] for x in ours] for m in modality}
            assert _shapes(ours) == _shapes(columns)
        else:
            assert _shapes(ours) == _shapes(columns[modality])
        assert our_extra == {k: v for k, v in extra.items() if v}, inputs


def test_chat_batches_with_video_and_audio_become_sentence_transformers_messages():
    """A chat model (``message`` listed) gets every batch as conversations: ``{array, video_metadata}`` /
    ``{array, sampling_rate}`` dicts are unwrapped into ``video`` / ``audio`` items (their metadata and rate go to
    the processor's video / audio kwargs), frame lists stay one video, pairs become query/document turns —
    the conversations and kwargs sentence-transformers builds, in both message formats."""
    from sentence_transformers.base.modality import InputFormatter

    from stpipe.modules.transformer_inputs import to_messages

    clip, meta, wav = np.zeros((5, 3, 8, 8), dtype=np.uint8), {"fps": 2.0}, np.zeros(800, dtype=np.float32)
    batches = [[{"array": clip, "video_metadata": meta}, clip], [{"video": [Image.new("RGB", (8, 8))] * 2}],
               [{"text": "a", "video": {"array": clip, "video_metadata": meta}}, {"text": "b", "video": clip}],
               [{"array": wav, "sampling_rate": 16000}, {"text": "hear", "audio": wav}],
               [("q", Image.new("RGB", (8, 8))), ("q", "d")], ["a", clip, {"image": [Image.new("RGB", (8, 8))] * 2}]]
    supported = ["text", "image", "audio", "video", "message"]
    config = {m: {"method": "forward", "method_output_name": "logits"} for m in supported}
    for fmt in ("structured", "flat"):
        for inputs in batches:
            formatter = InputFormatter("x", fmt, None, supported)
            modality, columns, extra = formatter.parse_inputs(inputs)
            if modality != "message":
                modality, columns = formatter.batch_to_message(modality, columns)
            expected = formatter.prepend_prompt_to_messages(columns["message"], "P")
            ours, our_modality, our_extra = parse_inputs(list(inputs), config)
            assert our_modality == "message" and our_extra == {k: v for k, v in extra.items() if v}
            assert _shapes(to_messages(ours, "P", fmt)) == _shapes(expected), (fmt, inputs)
