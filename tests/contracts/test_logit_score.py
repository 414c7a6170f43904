"""LogitScore's contract (:mod:`stpipe.contracts.logit_score`): a causal LM's logits in, one score out."""

from __future__ import annotations

from stpipe.contracts.logit_score import describe


def test_it_reads_the_causal_logits_or_its_named_input_and_writes_one_score():
    io = describe({"true_token_id": 1}, {"causal_logits": 100})
    assert (io.consumes, io.produces) == ({"causal_logits": "module_input_name"}, {"scores": 1})
    assert describe({"module_input_name": "x"}, {}).consumes == {"x": "module_input_name"}
