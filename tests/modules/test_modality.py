"""Modality helpers: the unsupported-modality messages against sentence-transformers' (the oracle), the checks of an
explicit ``modality=`` argument, and text / text-pair inputs of text-only modules."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sentence_transformers.base.modality import infer_batch_modality as st_infer_batch_modality
from sentence_transformers.base.modality import raise_unsupported_modality_error

from stpipe.modules.modality import (
    check_batch_modality,
    check_modality,
    infer_batch_modality,
    modality_mismatch_error,
    sample_modalities,
    text_inputs,
    unsupported_modality_error,
)

IMG = Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8))
MSG = {"role": "user", "content": "hi"}
CASES = [  # (inputs, supported)
    (["a cat", IMG], ["text", "image"]),                                   # mixed, each supported
    (["a cat", IMG, {"text": "x", "image": IMG}], ["text", "image", ("image", "text")]),
    (["a cat", {"audio": [0.0], "text": "x"}], ["text"]),                   # mixed, a part unsupported
    ([MSG, MSG], ["text"]),                                                  # chat messages only
    ([MSG, "a cat"], ["text", "image"]),                                     # chat messages mixed with text
    ([{"text": "x", "image": IMG}], ["text", "image"]),                      # a combination, parts supported
    ([IMG], ["text"]),                                                       # plain unsupported
    ([{"text": "x", "audio": [0.0]}], ["text"]),                             # a combination, a part unsupported
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_unsupported_modality_messages_match_oracle(case):
    inputs, supported = CASES[case]
    modality = infer_batch_modality(inputs)
    assert modality == st_infer_batch_modality(inputs, supported_modalities=supported)
    with pytest.raises(ValueError) as expected:
        raise_unsupported_modality_error(inputs, modality, supported, "SentenceTransformer model")
    got = unsupported_modality_error(sample_modalities(inputs), modality, supported, "SentenceTransformer model")
    assert str(got) == str(expected.value)
    with pytest.raises(ValueError) as checked:
        check_batch_modality(inputs, None, supported, "SentenceTransformer model")
    assert str(checked.value) == str(expected.value)


@pytest.mark.parametrize("given, normalised", [
    ("text", "text"), (["text"], "text"), (("image",), "image"), ("image+text", ("image", "text")),
    (["text", "image"], ("image", "text")), ("message", "message"), (None, None),
])
def test_valid_explicit_modalities_are_normalised(given, normalised):
    assert check_modality(given) == normalised


@pytest.mark.parametrize("given, hint", [
    (5, None), ("imag", "did you mean 'image'?"), ("", None), ("image+", None), ("text+text", None), ([], None),
    (["message", "text"], None), (["text", 3], None), ({"text"}, None), ("smell", None),
])
def test_invalid_explicit_modalities_are_value_errors(given, hint):
    with pytest.raises(ValueError, match=r"is not a valid modality: give one of 'text', 'image', 'audio'") as exc:
        check_modality(given)
    assert str(exc.value).startswith(f"modality={given!r}")
    assert (hint in str(exc.value)) if hint else "did you mean" not in str(exc.value)


def test_explicit_modality_must_match_the_inputs(tmp_path):
    supported = ["text", "image", ("image", "text")]
    with pytest.raises(ValueError, match=r"^modality='image' was given, but the inputs are text; pass "
                                         r"modality='text', or leave modality unset"):
        check_batch_modality(["a", "b"], "image", supported, "SentenceTransformer model")
    with pytest.raises(ValueError, match=r"^Modality 'audio' is not supported by this SentenceTransformer model. "
                                         r"Supported modalities: text, image, image\+text.$"):
        check_batch_modality(["a"], "audio", supported, "SentenceTransformer model")
    with pytest.raises(ValueError, match=r"^modality='image\+text' was given, but the inputs include image, text;"):
        check_batch_modality(["a", IMG, {"text": "a", "image": IMG}], "image+text", ["message", *supported], "m")
    check_batch_modality(["a"], ["text"], supported, "m")
    check_batch_modality([{"image": IMG, "text": "a"}], "text+image", supported, "m")
    check_batch_modality(["a", IMG], "message", ["message"], "m")  # anything can become a chat message
    IMG.save(tmp_path / "x.png")  # an image file's path is an image when the modality says so
    check_batch_modality([str(tmp_path / "x.png")], "image", supported, "m")
    assert modality_mismatch_error("text", [None, None]) is None  # nothing known: nothing to say


def test_text_inputs_take_texts_and_pairs():
    assert text_inputs(["a", ("b", "c"), ["d", "e"]], None, "M") == ["a", ("b", "c"), ("d", "e")]
    assert text_inputs(["a", ("b", "c")], "q: ", "M") == ["q: a", ("q: b", "c")]
    for bad in [5, ("a", "b", "c"), ("a", 1), None, {"text": "a"}]:
        with pytest.raises(TypeError, match="^M takes text only"):
            text_inputs(["ok", bad], None, "M")
