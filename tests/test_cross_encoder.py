"""CrossEncoder pipelines (``model_type: CrossEncoder``) against sentence-transformers 6.2's ``CrossEncoder``: the
same scores (≤ 1e-5) and ``rank`` order on a tiny BERT sequence classifier, the CrossEncoder format both ways, and
clear errors for the mistakes a user can make."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_tiny_bert

import stpipe
from stpipe.cross_encoder import CrossEncoder, pair_list, sort_ranked
from stpipe.errors import ConfigError, ConfigWarning, ModelTypeError

PAIRS = [("what is the capital of france", "paris is the capital of france"),
         ("a cat", "the dog runs fast in the city at night"), ("rain", "sunny"),
         ("who reads a book", "a child reads a book about birds and fish in the sea"), ("music", "music")]
DOCS = ["the cat sits", "a dog", "cats and dogs play in the house", "paris", "the cat", "blue sky and sun"]


def write_classifier(path: Path, num_labels: int = 1, seed: int = 3) -> Path:
    """A tiny BertForSequenceClassification (the conftest tiny BERT's config) whose head spreads the scores."""
    from transformers import BertConfig, BertForSequenceClassification

    write_tiny_bert(path)
    cfg = BertConfig.from_pretrained(path)
    cfg.num_labels = num_labels
    torch.manual_seed(seed)
    model = BertForSequenceClassification(cfg).eval()
    with torch.no_grad():  # random weights give near-constant scores; these spread them
        model.bert.pooler.dense.weight.mul_(20.0)
        model.classifier.weight.mul_(20.0)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def cls_dir(tmp_path_factory) -> Path:
    return write_classifier(tmp_path_factory.mktemp("tiny-cls"))


@pytest.fixture(scope="module")
def cls3_dir(tmp_path_factory) -> Path:
    return write_classifier(tmp_path_factory.mktemp("tiny-cls3"), num_labels=3)


def definition(path: Path, **extra) -> dict:
    return {"model_type": "CrossEncoder", **extra,
            "modules": [{"type": "Transformer", "model_name_or_path": str(path),
                         "transformer_task": "sequence-classification"}]}


@pytest.fixture(scope="module")
def oracle(cls_dir):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    return STCrossEncoder(str(cls_dir), device="cpu")


@pytest.fixture(scope="module")
def ours(cls_dir) -> CrossEncoder:
    return stpipe.build(definition(cls_dir), device="cpu")


def test_predict_matches_sentence_transformers(ours, oracle):
    assert isinstance(ours, CrossEncoder) and ours.num_labels == 1
    assert type(ours.activation_fn) is torch.nn.Sigmoid
    got, ref = ours.predict(PAIRS, batch_size=2), oracle.predict(PAIRS, batch_size=2)
    assert got.shape == ref.shape == (len(PAIRS),) and got.dtype == np.float32
    assert np.abs(got - ref).max() <= 1e-5
    assert np.ptp(ref) > 1e-3  # 100x the tolerance: the scores (and the rank order) are distinguishable
    single = ours.predict(PAIRS[0])
    assert np.ndim(single) == 0 and abs(float(single) - float(ref[0])) <= 1e-5
    raw = ours.predict(PAIRS, activation_fn=torch.nn.Identity(), convert_to_tensor=True)
    ref_raw = oracle.predict(PAIRS, activation_fn=torch.nn.Identity(), convert_to_tensor=True)
    assert isinstance(raw, torch.Tensor) and torch.allclose(raw, ref_raw, atol=1e-5)
    assert isinstance(ours.predict(PAIRS, convert_to_numpy=False), list)


def test_prompts_reach_the_first_text_of_each_pair(cls_dir, oracle):
    ours = stpipe.build(definition(cls_dir, prompts={"q": "query: "}), device="cpu")
    got = ours.predict(PAIRS, prompt_name="q")
    assert np.abs(got - oracle.predict(PAIRS, prompt="query: ")).max() <= 1e-5
    assert np.abs(got - ours.predict(PAIRS)).max() > 1e-4


def test_rank_matches_sentence_transformers(ours, oracle):
    query = "the cat"
    got, ref = ours.rank(query, DOCS, return_documents=True), oracle.rank(query, DOCS, return_documents=True)
    assert [h["corpus_id"] for h in got] == [h["corpus_id"] for h in ref]
    assert [h["text"] for h in got] == [h["text"] for h in ref]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(got, ref, strict=True)) <= 1e-5
    top = ours.rank(query, DOCS, top_k=2)
    assert top == [{"corpus_id": h["corpus_id"], "score": h["score"]} for h in got[:2]]


def test_rank_ties_keep_document_order():
    hits = sort_ranked([0.5, 0.9, 0.5, 0.9], ["a", "b", "c", "d"], None)
    assert [h["corpus_id"] for h in hits] == [1, 3, 0, 2] and hits[0]["text"] == "b"


def test_several_labels_identity_and_softmax(cls3_dir):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    ours, ref = stpipe.build(definition(cls3_dir), device="cpu"), STCrossEncoder(str(cls3_dir), device="cpu")
    assert ours.num_labels == 3 and type(ours.activation_fn) is torch.nn.Identity
    for kw in ({}, {"apply_softmax": True}):
        got, want = ours.predict(PAIRS, **kw), ref.predict(PAIRS, **kw)
        assert got.shape == (len(PAIRS), 3) and np.abs(got - want).max() <= 1e-5
    with pytest.raises(ValueError, match=r"num_labels=1\), this one has 3"):
        ours.rank("q", ["d"])


def test_a_cross_encoder_saved_by_sentence_transformers_loads_and_scores_the_same(cls_dir, oracle, tmp_path):
    oracle.save(str(tmp_path / "st"))
    loaded = stpipe.load(tmp_path / "st", device="cpu")
    assert isinstance(loaded, CrossEncoder) and type(loaded.activation_fn) is torch.nn.Sigmoid
    assert np.abs(loaded.predict(PAIRS) - oracle.predict(PAIRS)).max() <= 1e-5


def test_a_saved_identity_activation_is_kept_both_ways(cls_dir, tmp_path):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    st = STCrossEncoder(str(cls_dir), device="cpu", activation_fn=torch.nn.Identity())
    st.save(str(tmp_path / "st"))
    loaded = stpipe.load(tmp_path / "st", device="cpu")
    assert type(loaded.activation_fn) is torch.nn.Identity
    assert np.abs(loaded.predict(PAIRS) - st.predict(PAIRS)).max() <= 1e-5
    loaded.save(tmp_path / "ours")
    again = STCrossEncoder(str(tmp_path / "ours"), device="cpu")
    assert type(again.activation_fn) is torch.nn.Identity


def test_built_from_yaml_and_saved_by_stpipe_loads_in_sentence_transformers(cls_dir, tmp_path):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    yaml = tmp_path / "reranker.yaml"
    yaml.write_text(f"model_type: CrossEncoder\nname: tiny-rr\nmodules:\n  - type: Transformer\n"
                    f"    model_name_or_path: {cls_dir}\n    transformer_task: sequence-classification\n")
    ours = stpipe.build(yaml, device="cpu")
    ours.save(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config_sentence_transformers.json").read_text())
    assert config["model_type"] == "CrossEncoder" and config["prompts"] == {}
    assert config["activation_fn"] == "torch.nn.modules.activation.Sigmoid" and "similarity_fn_name" not in config
    assert "cross-encoder" in (tmp_path / "saved" / "README.md").read_text()
    st = STCrossEncoder(str(tmp_path / "saved"), device="cpu")
    assert np.abs(st.predict(PAIRS) - ours.predict(PAIRS)).max() <= 1e-5
    assert [h["corpus_id"] for h in st.rank("a dog", DOCS)] == [h["corpus_id"] for h in ours.rank("a dog", DOCS)]
    definition_back = stpipe.formats.st.to_definition(tmp_path / "saved")
    assert definition_back["model_type"] == "CrossEncoder" and "similarity_fn_name" not in definition_back


def test_a_legacy_cross_encoder_folder_is_a_cross_encoder(cls_dir, tmp_path):
    """Saved by sentence-transformers < 6: HF files only, the activation in config.json."""
    import shutil

    legacy = tmp_path / "legacy"
    shutil.copytree(cls_dir, legacy)
    cfg = json.loads((legacy / "config.json").read_text())
    cfg["sentence_transformers"] = {"activation_fn": "torch.nn.modules.linear.Identity"}
    (legacy / "config.json").write_text(json.dumps(cfg))
    loaded = stpipe.load(legacy, device="cpu")
    assert isinstance(loaded, CrossEncoder) and type(loaded.activation_fn) is torch.nn.Identity
    assert loaded[0].transformer_task == "sequence-classification"
    cfg["sentence_transformers"] = {"activation_fn": "evil.module.Act"}
    (legacy / "config.json").write_text(json.dumps(cfg))
    assert type(stpipe.load(legacy, device="cpu").activation_fn) is torch.nn.Sigmoid  # never imported


def test_model_type_mistakes_are_clear_errors(ours, tiny_bert_dir):
    embedder = stpipe.build({"modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                                         {"type": "Pooling"}]}, device="cpu")
    with pytest.raises(ModelTypeError, match="predict.. scores pairs and needs a CrossEncoder, but this is a "
                                             "SentenceTransformer"):
        embedder.predict(PAIRS)
    with pytest.raises(ModelTypeError, match="needs a CrossEncoder"):
        embedder.rank("q", ["d"])
    with pytest.raises(ModelTypeError, match="encode.. returns embeddings, but this is a CrossEncoder"):
        ours.encode(["x"])
    with pytest.raises(ModelTypeError, match="CrossEncoder"):
        ours.encode_query(["x"])


def test_bad_inputs_name_the_input():
    with pytest.raises(ValueError, match=r"input 1 is not a pair: expected two items \(query, document\), found "
                                         "tuple of length 3"):
        pair_list([("a", "b"), ("a", "b", "c")])
    with pytest.raises(ValueError, match="input 0 is not a pair"):
        pair_list(["just one text"] * 2 + [5])
    assert pair_list(("q", "d")) == ([("q", "d")], True)


def test_rank_arguments_are_checked(ours):
    with pytest.raises(ValueError, match="no documents to rank"):
        ours.rank("q", [])
    with pytest.raises(ValueError, match="takes a list of documents, got str"):
        ours.rank("q", "one document")
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        ours.rank("q", ["d"], top_k=0)


def test_scores_nothing_consumes_is_a_validation_error(cls_dir):
    with pytest.raises(ConfigError) as err:
        stpipe.validate({"modules": definition(cls_dir)["modules"]})
    (p,) = err.value.problems
    assert p.code == "graph.unconsumed" and p.path_str == "modules[0].transformer_task"
    assert "produces 'scores', which no later module reads, and a SentenceTransformer returns " \
           "'sentence_embedding'" in p.message and "model_type: CrossEncoder" in p.hint


def test_a_cross_encoder_without_scores_is_a_validation_error(tiny_bert_dir):
    bad = {"model_type": "CrossEncoder", "modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                                                     {"type": "Pooling"}]}
    with pytest.raises(ConfigError) as err:
        stpipe.validate(bad)
    assert [(p.code, p.path_str) for p in err.value.problems] == [("graph.no-output", "modules")]
    assert "never produces 'scores' (what a CrossEncoder returns)" in err.value.problems[0].message


def test_model_level_keys_of_the_wrong_type(cls_dir, tiny_bert_dir):
    with pytest.raises(ConfigError) as err:
        stpipe.validate(definition(cls_dir, truncate_dim=8, activation_fn="sigmoyd"))
    assert [(p.code, p.path_str) for p in err.value.problems] == [("check.model-type", "truncate_dim"),
                                                                  ("check.activation", "activation_fn")]
    assert "did you mean 'sigmoid'" in err.value.problems[1].hint
    st = {"activation_fn": "sigmoid", "modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                                                  {"type": "Pooling"}]}
    with pytest.raises(ConfigError) as err:
        stpipe.validate(st)
    assert [(p.code, p.path_str) for p in err.value.problems] == [("check.model-type", "activation_fn")]


def test_unpad_inputs_true_warns_with_the_reason(cls_dir, tiny_bert_dir):
    node = {"type": "Transformer", "model_name_or_path": str(tiny_bert_dir), "unpad_inputs": True}
    with pytest.warns(ConfigWarning) as got:
        stpipe.validate({"modules": [node, {"type": "Pooling"}]})
    (w,) = [w.message.problem for w in got if isinstance(w.message, ConfigWarning)]
    assert w.code == "check.unpad-inputs" and w.path_str == "modules[0].unpad_inputs"
    assert "flash attention" in w.message and "sdpa" in w.message
    ce = definition(cls_dir)
    ce["modules"][0]["unpad_inputs"] = True
    with pytest.warns(ConfigWarning, match="only for feature-extraction and fill-mask.*'sequence-classification'"):
        stpipe.validate(ce)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        stpipe.validate({"modules": [{**node, "unpad_inputs": None}, {"type": "Pooling"}]})  # auto: no warning
        stpipe.validate({"modules": [{**node, "unpad_inputs": False}, {"type": "Pooling"}]})
