"""Pooling's contract (:mod:`stpipe.contracts.pooling`): the deprecated flags as sentence-transformers reads them,
valid modes, and the width of several modes."""

from __future__ import annotations

import pytest

from stpipe.contracts.pooling import check_pooling_mode, deprecated_flags, describe, legacy_pooling_mode


def test_the_deprecated_flags_become_pooling_mode():
    params = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}
    assert legacy_pooling_mode(params) == ("cls", "mean") and params == {"pooling_mode": ("cls", "mean")}
    params = {"pooling_mode_max_tokens": False}
    assert legacy_pooling_mode(params) == "mean" and params == {"pooling_mode": "mean"}  # none set: mean
    params = {"pooling_mode": "max", "pooling_mode_cls_token": True}
    legacy_pooling_mode(params)
    assert params == {"pooling_mode": "max"}  # an explicit mode wins
    assert legacy_pooling_mode({"pooling_mode": "cls"}) is None


def test_validation_says_what_to_write_instead_of_the_flags():
    assert deprecated_flags({"pooling_mode_cls_token": True}) == [(["pooling_mode_cls_token"],
                                                                  "write pooling_mode: cls instead")]
    assert deprecated_flags({"pooling_mode": "max", "pooling_mode_cls_token": True})[0][1].startswith("remove them")
    assert deprecated_flags({"pooling_mode": "max"}) == []


def test_modes_and_widths():
    assert check_pooling_mode(["cls", "mean"]) == ("cls", "mean") and check_pooling_mode("max") == "max"
    with pytest.raises(ValueError, match="did you mean 'mean'"):
        check_pooling_mode("meen")
    with pytest.raises(ValueError):
        check_pooling_mode([])
    assert describe({"pooling_mode": ["cls", "mean"]}, {"token_embeddings": 8}).produces == {"sentence_embedding": 16}
    assert describe({"embedding_dimension": 4}, {}).requires_dim == [("token_embeddings", 4, "embedding_dimension")]
