"""Chat-template (message) inputs, against sentence-transformers 6.2: the message format inferred from the
template, the prompt as a system message, the template's tail restored after truncation, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_standins

from stpipe import build
from stpipe.modules.transformer import Transformer

CONVS = [[{"role": "user", "content": "what is the capital of france?"}],
         [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello, how can i help?"},
          {"role": "user", "content": "a cat"}]]
TEXTS = ["the weather in paris is rainy today and tomorrow", "a", "cats and dogs can be good friends"]
#: a template that reads structured content items only (a flat string content would render as nothing)
STRUCTURED = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m.content[0].text }}<|im_end|>\n"
              "{% endfor %}<|im_start|>assistant\n")


@pytest.fixture(scope="module")
def chat_lm(tmp_path_factory):
    return make_standins.write_tiny_chat_lm(tmp_path_factory.mktemp("chat-lm"))


def _pair(path, **kw):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer as STTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling as STPooling

    ref = SentenceTransformer(modules=[STTransformer(str(path), **kw), STPooling(32, "lasttoken")], device="cpu")
    ours = build({"modules": [{"type": "Transformer", "model_name_or_path": str(path), **kw},
                              {"type": "Pooling", "pooling_mode": "lasttoken"}]}, device="cpu")
    return ref, ours


@pytest.mark.slow
def test_message_embeddings_match_sentence_transformers_with_truncation(chat_lm):
    """Every batch goes through the chat template; truncated rows get the template's tail back."""
    kw = {"processing_kwargs": {"text": {"max_length": 16}}}
    ref, ours = _pair(chat_lm, **kw)
    assert ours[0].modality_config == ref[0].modality_config  # text + message (flat)
    for inputs in (TEXTS, CONVS):
        for prompt in (None, "find the answer"):
            f_ref = ref[0].preprocess(inputs, prompt=prompt, **kw)
            f_ours = ours[0].preprocess(inputs, prompt=prompt)
            assert f_ours["modality"] == "message" and torch.equal(f_ref["input_ids"], f_ours["input_ids"])
            a, b = ref.encode(inputs, prompt=prompt), ours.encode(inputs, prompt=prompt)
            assert np.abs(a - b).max() <= 1e-5
    ids = ours[0].preprocess(TEXTS[:1])["input_ids"][0].tolist()
    tail = ours[0].tokenizer("<|im_end|>\n")["input_ids"]
    assert len(ids) == 16 and ids[-len(tail):] == tail  # cut at 16 tokens, yet it ends like the template
    from PIL import Image  # an image to this text-only chat LM: sentence-transformers embeds the rest silently

    with pytest.raises(ValueError, match=r"^input 1 carries image, but this Transformer's processor has no image "
                                         r"processor \(it takes text\): the image would never reach the model"):
        ours.encode(["a", Image.new("RGB", (8, 8))])


@pytest.mark.slow
def test_structured_chat_template_gets_structured_messages(chat_lm, tmp_path):
    import shutil

    d = shutil.copytree(chat_lm, tmp_path / "structured")
    (d / "chat_template.jinja").write_text(STRUCTURED)
    ref, ours = _pair(d)
    assert ours[0].modality_config["message"]["format"] == "structured" == ref[0].modality_config["message"]["format"]
    a, b = ref.encode(TEXTS, prompt="be brief"), ours.encode(TEXTS, prompt="be brief")
    assert np.abs(a - b).max() <= 1e-5
    rendered = ours[0].tokenizer.decode(ours[0].preprocess(["a cat"], prompt="be brief")["input_ids"][0])
    assert "system\nbe brief" in rendered and "user\na cat" in rendered


@pytest.mark.slow
def test_chat_input_to_a_model_without_chat_template_names_the_input(tiny_bert_dir):
    model = build({"modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                               {"type": "Pooling"}]}, device="cpu")
    assert "message" not in Transformer(str(tiny_bert_dir)).modalities
    with pytest.raises(ValueError, match=r"^input 2 is a chat conversation \(role/content messages\), but this "
                                         r"SentenceTransformer model does not support chat-style 'message' inputs: "
                                         r"its processor has no chat template"):
        model.encode(["a", "b", CONVS[1]])
    with pytest.raises(ValueError, match=r"^This SentenceTransformer model does not support chat-style 'message' "
                                         r"inputs \(dicts or lists of dicts with 'role' and 'content'\)"):
        model.encode(CONVS[0])  # one conversation is one input: sentence-transformers' words
