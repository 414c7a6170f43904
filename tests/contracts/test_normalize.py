"""Normalize's contract (:mod:`stpipe.contracts.normalize`): it passes its input feature on, same width."""

from __future__ import annotations

from stpipe.contracts.normalize import describe


def test_it_passes_the_feature_on_with_its_width():
    io = describe({}, {"sentence_embedding": 8})
    assert "sentence_embedding" in io.consumes and io.produces == {"sentence_embedding": 8}
    io = describe({"module_input_name": "a", "module_output_name": "b"}, {"a": 4})
    assert "a" in io.consumes and io.produces == {"b": 4}
