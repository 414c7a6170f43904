"""Inputs checked before any batch runs (:mod:`stpipe.input_check`): the first input the model cannot take is
named, with what the model takes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from PIL import Image

from stpipe.input_check import check_inputs


def test_a_text_model_names_the_first_input_it_cannot_take():
    text_only = SimpleNamespace(modalities=["text"])
    check_inputs(text_only, ["a", "b"], "SentenceTransformer")
    with pytest.raises(ValueError, match=r"input 1 .*image") as info:
        check_inputs(text_only, ["a", Image.new("RGB", (2, 2)), "c"], "SentenceTransformer")
    assert "text" in str(info.value)


def test_the_module_itself_may_refuse_an_input_of_a_modality_it_lists():
    picky = SimpleNamespace(modalities=["text"], input_problem=lambda x: "is empty" if x == "" else None)
    check_inputs(picky, ["a", "b"], "SentenceTransformer")
    with pytest.raises(ValueError, match="^input 1 is empty$"):
        check_inputs(picky, ["a", ""], "SentenceTransformer")
