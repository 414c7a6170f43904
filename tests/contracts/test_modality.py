"""Modalities (:mod:`stpipe.contracts.modality`): one spelling for a combination, whichever way it is written."""

from __future__ import annotations

import pytest

from stpipe.contracts.modality import check_modality, modality_str, normalize_modality


def test_a_combination_is_one_sorted_tuple_in_any_spelling():
    assert normalize_modality("image+text") == normalize_modality(["text", "image"]) == ("image", "text")
    assert normalize_modality(["text"]) == "text" and normalize_modality(None) is None
    assert modality_str(("image", "text")) == "image+text" and modality_str("text") == "text"


@pytest.mark.parametrize("bad", ["txt", ["text", "text"], ["message", "text"], [], 3, ["text", 1]])
def test_check_modality_refuses_what_no_route_can_match(bad):
    with pytest.raises(ValueError, match="is not a valid modality"):
        check_modality(bad)


def test_check_modality_suggests_the_closest_name():
    assert check_modality("audio+text") == ("audio", "text") and check_modality(None) is None
    with pytest.raises(ValueError, match="did you mean 'image'"):
        check_modality("imag")
