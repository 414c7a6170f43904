"""The fixed modality configurations of some model types (:mod:`stpipe.contracts.modality_edge_cases`)."""

from __future__ import annotations

from stpipe.contracts.modality_edge_cases import edge_case


def test_a_known_edge_case_is_a_fresh_copy_and_others_are_none():
    config, feature = edge_case("text-generation", "whisper")
    assert feature == "causal_logits" and config == {"text": {"method": "forward", "method_output_name": "logits"}}
    config["text"]["method"] = "changed"
    assert edge_case("text-generation", "whisper")[0]["text"]["method"] == "forward"
    assert edge_case("feature-extraction", "bert") is None and edge_case("nope", None) is None
