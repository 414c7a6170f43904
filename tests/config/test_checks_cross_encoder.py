"""The CrossEncoder checks and the ``unpad_inputs`` warning (:mod:`stpipe.config.checks_cross_encoder`)."""

from __future__ import annotations

from stpipe.config.checks import CheckContext, run_checks
from stpipe.config.checks_cross_encoder import unpad_reason


def _codes(defn):
    return [(p.code, p.path_str, p.severity) for p in run_checks(defn, CheckContext())
            if p.code in ("check.model-type", "check.activation", "check.unpad-inputs")]


def test_activation_fn_belongs_to_a_cross_encoder_and_must_name_an_activation():
    assert _codes({"activation_fn": "sigmoid", "modules": []}) == [("check.model-type", "activation_fn", "error")]
    assert _codes({"model_type": "CrossEncoder", "activation_fn": "sigmoid", "modules": []}) == []
    assert _codes({"model_type": "CrossEncoder", "activation_fn": "sigmoyd", "modules": []}) == [
        ("check.activation", "activation_fn", "error")]


def test_unpad_inputs_true_is_a_warning_that_says_why():
    node = {"type": "Transformer", "model_name_or_path": "m", "unpad_inputs": True}
    assert _codes({"modules": [node]}) == [("check.unpad-inputs", "modules[0].unpad_inputs", "warning")]
    assert _codes({"modules": [{**node, "unpad_inputs": None}]}) == []
    assert "task is 'sequence-classification'" in unpad_reason({**node, "transformer_task": "sequence-classification"})
    assert "this model uses the default (sdpa)" in unpad_reason(node)
    assert "does not flatten" in unpad_reason({**node, "model_kwargs": {"attn_implementation": "flash_attention_2"}})
