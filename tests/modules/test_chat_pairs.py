"""The chat-template pair check (stpipe/modules/chat_pairs.py): a (query, document) pair on a template without
query/document roles is refused with the input's index and what to change — never a 0-width input, an
all-padding row or an empty input, which a reranker would score silently."""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import write_tiny_bert

import stpipe
from stpipe.modules.chat_pairs import pair_roles_problem
from stpipe.modules.transformer import Transformer

USER_ONLY = "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }} {% endif %}{% endfor %}"
PAIRED = ("{% for m in messages %}{% if m['role'] == 'query' %}Q: {{ m['content'] }} {% elif m['role'] == "
          "'document' %}D: {{ m['content'] }} {% elif m['role'] == 'user' %}{{ m['content'] }}{% endif %}{% endfor %}")


def _with_template(src, dst, template):
    from transformers import AutoTokenizer

    shutil.copytree(src, dst)
    tok = AutoTokenizer.from_pretrained(dst)
    tok.chat_template = template
    tok.save_pretrained(dst)
    return dst


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A tiny BertForSequenceClassification (one score)."""
    from transformers import BertConfig, BertForSequenceClassification

    path = write_tiny_bert(tmp_path_factory.mktemp("cls"))
    cfg = BertConfig.from_pretrained(path)
    cfg.num_labels = 1
    torch.manual_seed(0)
    BertForSequenceClassification(cfg).eval().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def user_only(classifier, tmp_path_factory):
    return _with_template(classifier, tmp_path_factory.mktemp("user-only") / "m", USER_ONLY)


@pytest.fixture(scope="module")
def named_templates(classifier, tmp_path_factory):
    """A dict of templates: the default knows only 'user', the 'rerank' one renders query and document."""
    return _with_template(classifier, tmp_path_factory.mktemp("named") / "m",
                          {"default": USER_ONLY, "rerank": PAIRED})


def _cross_encoder(path, **node):
    return stpipe.build({"model_type": "CrossEncoder", "modules": [
        {"type": "Transformer", "model_name_or_path": str(path), "transformer_task": "sequence-classification",
         **node}]}, device="cpu")


def test_pairs_without_pair_roles_are_refused_with_the_index(user_only):
    model = _cross_encoder(user_only)
    with pytest.raises(ValueError, match=r"input 0 is a \(query, document\) pair.*'query' and 'document'.*"
                                         r"set a chat template that renders both roles"):
        model.predict([("what is the capital of france", "paris")])


def test_a_batch_mixing_a_text_and_a_pair_names_the_pair(user_only):
    """The single text renders fine; the pair would be an all-padding row: refused, naming input 1."""
    module = Transformer(str(user_only), transformer_task="sequence-classification")
    with pytest.raises(ValueError, match=r"^input 1 is a \(query, document\) pair"):
        module.preprocess(["the cat", ("a dog", "the dog runs")])
    with pytest.raises(ValueError, match=r"^input 1 is a \(query, document\) pair"):
        module.preprocess([[{"role": "user", "content": "the cat"}], ("a dog", "the dog runs")])
    single = module.preprocess(["the cat"])["input_ids"][0].tolist()
    assert "cat" in module.tokenizer.decode(single)  # a single text still renders


def test_a_dict_of_templates(named_templates):
    """The default template of the dict drops the pair (refused); naming the one that renders both roles works
    and puts both texts in the input."""
    module = Transformer(str(named_templates), transformer_task="sequence-classification")
    with pytest.raises(ValueError, match="input 0 is a"):
        module.preprocess([("the cat", "a dog")])
    ok = Transformer(str(named_templates), transformer_task="sequence-classification",
                     processing_kwargs={"chat_template": {"chat_template": "rerank"}})
    ids = ok.preprocess([("the cat", "a dog")])["input_ids"][0].tolist()
    text = ok.tokenizer.decode(ids)
    assert "cat" in text and "dog" in text


def test_a_template_with_both_roles_passes(classifier, tmp_path):
    module = Transformer(str(_with_template(classifier, tmp_path / "m", PAIRED)),
                         transformer_task="sequence-classification")
    assert pair_roles_problem(module.processor, "flat", {}) is None
    assert module.preprocess([("the cat", "a dog")])["input_ids"].shape[1] > 2


def test_the_verdict_names_the_dropped_role(classifier, tmp_path):
    only_query = "{% for m in messages %}{% if m['role'] == 'query' %}{{ m['content'] }}{% endif %}{% endfor %}"
    module = Transformer(str(_with_template(classifier, tmp_path / "m", only_query)),
                         transformer_task="sequence-classification")
    assert pair_roles_problem(module.processor, "flat", {}) == \
        "drops the 'document' message content (it renders no document role)"
