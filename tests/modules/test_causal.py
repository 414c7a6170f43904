"""The causal tasks (text-generation / any-to-any) and LogitScore, against sentence-transformers 6.2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_standins

from stpipe import build
from stpipe.config.validate import inspect_definition
from stpipe.modules.logit_score import LogitScore
from stpipe.modules.transformer import Transformer

TEXTS = ["hello world", "a", "what is the capital of france?", "the cat sits on the mat."]


@pytest.fixture(scope="module")
def chat_lm(tmp_path_factory):
    return make_standins.write_tiny_chat_lm(tmp_path_factory.mktemp("chat-lm"))


def _st_transformer(path, **kw):
    from sentence_transformers.base.modules import Transformer as STTransformer

    return STTransformer(str(path), **kw)


HIDDEN = {"text": {"method": "forward", "method_output_name": ["hidden_states", -1]},
          "message": {"method": "forward", "method_output_name": ["hidden_states", -1], "format": "flat"}}


@pytest.mark.slow
def test_causal_embedder_hidden_states_lasttoken_match_sentence_transformers(chat_lm):
    """A text-generation Transformer whose last hidden layer is pooled at the last token (a causal embedder)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling as STPooling

    kw = dict(transformer_task="text-generation", modality_config=HIDDEN, module_output_name="token_embeddings")
    ref = SentenceTransformer(modules=[_st_transformer(chat_lm, **kw), STPooling(32, "lasttoken")], device="cpu")
    ours = build({"modules": [{"type": "Transformer", "model_name_or_path": str(chat_lm), **kw},
                              {"type": "Pooling", "pooling_mode": "lasttoken"}]}, device="cpu")
    assert ours[0].tokenizer.padding_side == "left"
    for prompt in (None, "represent this: "):
        a = ref.encode(TEXTS, prompt=prompt, batch_size=3)
        b = ours.encode(TEXTS, prompt=prompt, batch_size=3)
        assert a.shape == b.shape == (4, 32)
        assert np.abs(a - b).max() <= 1e-5


@pytest.mark.slow
def test_logit_scores_match_sentence_transformers(chat_lm, tmp_path):
    from sentence_transformers.cross_encoder.modules.logit_score import LogitScore as STLogitScore

    ref_t = _st_transformer(chat_lm, transformer_task="text-generation").eval()
    ours_t = Transformer(str(chat_lm), transformer_task="text-generation").eval()
    assert ours_t.modality_config == ref_t.modality_config and ours_t.module_output_name == "causal_logits"
    for true_id, false_id in ((5, 6), (9, None)):
        ref, ours = STLogitScore(true_id, false_id), LogitScore(true_id, false_id)
        with torch.inference_mode():
            f_ref = ref_t.preprocess(TEXTS, prompt="judge: ")
            f_ours = ours_t.preprocess(TEXTS, prompt="judge: ")
            assert torch.equal(f_ref["input_ids"], f_ours["input_ids"]) and f_ours["logits_to_keep"] == 1
            a = ref(ref_t(f_ref))["scores"]
            out = ours_t(f_ours)
            assert out["causal_logits"].shape == (4, 1, ours_t.model.config.vocab_size)
            b = ours(out)["scores"]
        assert a.shape == b.shape == (4, 1) and (a - b).abs().max() <= 1e-5
    ours.save(str(tmp_path))
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved == {"true_token_id": 9, "false_token_id": None, "module_input_name": "causal_logits"}
    assert STLogitScore.load(str(tmp_path)).get_config_dict() == LogitScore.load(str(tmp_path)).get_config_dict()


@pytest.mark.slow
def test_right_padding_set_after_loading_is_refused(chat_lm):
    t = Transformer(str(chat_lm), transformer_task="text-generation")
    t.tokenizer.padding_side = "right"
    with pytest.raises(ValueError, match=r"rows \[1\] of this batch end in padding.*set it back to 'left'"):
        t.preprocess(["a longer text", "a"])
    with pytest.raises(ValueError, match="logits_to_keep must be a non-negative integer"):
        Transformer(str(chat_lm), transformer_task="text-generation",
                    processing_kwargs={"text": {"logits_to_keep": -1}}).preprocess(["a"])


@pytest.mark.slow
def test_causal_output_nothing_reads_is_a_validation_error(chat_lm):
    """Validation reads config.json only: the task's output, causal_logits (width = vocab), must be read."""
    t = {"type": "Transformer", "model_name_or_path": str(chat_lm), "transformer_task": "any-to-any"}
    report = inspect_definition({"modules": [t]})
    [p] = report.errors
    assert (p.code, p.path_str) == ("graph.unconsumed", "modules[0].transformer_task")
    assert "LogitScore" in p.hint
    report = inspect_definition({"model_type": "CrossEncoder",
                                 "modules": [{**t, "transformer_task": "text-generation"},
                                             {"type": "LogitScore", "true_token_id": 3}]})
    assert report.errors == []  # a LogitScore reads causal_logits; the reranker returns its scores
    vocab = json.loads((chat_lm / "config.json").read_text())["vocab_size"]
    assert report.trace[0].produced["causal_logits"] == vocab  # logits over the vocabulary
    bad = inspect_definition({"modules": [{**t, "transformer_task": "text-generation"},
                                          {"type": "LogitScore", "true_token_id": -1}]})
    assert [(p.code, p.path_str) for p in bad.errors][:1] == [("schema.range", "modules[1].true_token_id")]
