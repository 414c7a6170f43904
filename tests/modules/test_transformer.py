"""Transformer: parity with sentence-transformers' Transformer (the oracle) on tiny models, and the 6.2 format."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import WORDS, write_tiny_bert
from PIL import Image
from sentence_transformers.base.modules import Transformer as STTransformer

from stpipe.errors import LoadError
from stpipe.modules.transformer import Transformer

SENTENCES = ["the cat runs in paris", "a dog", "what is the weather in new york now ?",
             "red car fast " * 12, "Big Blue Sea"]


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def cased_dir(tmp_path_factory) -> Path:
    """A tiny BERT whose WordPiece tokenizer knows the words and does *not* lower-case."""
    from transformers import BertTokenizerFast

    path = write_tiny_bert(tmp_path_factory.mktemp("cased-bert"), seed=3)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + sorted(set(WORDS)) + list("abcdefghijklmnopqrstuvwxyz.,?!':") + \
        ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (path / f).unlink()
    tok = BertTokenizerFast(vocab=str(path / "vocab.txt"), do_lower_case=False, model_max_length=64)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def chat_dir(cased_dir, tmp_path_factory) -> Path:
    """The cased tiny BERT with a chat template (→ the 'message' modality)."""
    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("chat-bert") / "m"
    shutil.copytree(cased_dir, path)
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }}\n{% endfor %}"
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return Image.fromarray((np.random.RandomState(0).rand(40, 48, 3) * 255).astype("uint8"))


@pytest.fixture(scope="module")
def pair(cased_dir):
    return Transformer(str(cased_dir)).eval(), STTransformer(str(cased_dir)).eval()


def assert_same(ours: dict, ref: dict, tol: float = 1e-5) -> None:
    assert set(ours) == set(ref), set(ours) ^ set(ref)
    for k, v in ref.items():
        if isinstance(v, torch.Tensor):
            assert ours[k].shape == v.shape, k
            assert (ours[k].float() - v.float()).abs().max().item() <= tol, k
        elif k != "all_layer_embeddings":
            assert ours[k] == v, k


def run_both(ours, ref, inputs, **kw):
    fa, fb = ours.preprocess(inputs, **kw), ref.preprocess(inputs, **kw)
    assert_same(fa, fb)
    with torch.no_grad():
        a, b = ours(dict(fa)), ref(dict(fb))
    assert_same(a, b)
    return a


# ------------------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("prompt", [None, "", "query: ", "Represent this : "])
def test_text_parity_with_and_without_prompt(pair, prompt):
    out = run_both(*pair, SENTENCES, prompt=prompt)
    assert out["token_embeddings"].shape[-1] == 32
    if prompt:
        assert out["prompt_length"] == len(pair[1].tokenizer(prompt)["input_ids"]) - 1


def test_prompt_length_counts_cls_and_excludes_sep(pair):
    assert pair[0].preprocess(["x"], prompt="query: ")["prompt_length"] == 3  # [CLS] query :


@pytest.mark.parametrize("kw", [
    {"max_length": 5}, {"task": "query"}, {"processing_kwargs": {"text": {"max_length": 6}}},
    {"processing_kwargs": {"common": {"padding": "max_length"}, "text": {"max_length": 20}}},
], ids=["max_length", "task", "per-call", "common"])
def test_processing_kwargs_parity(pair, kw):
    run_both(*pair, SENTENCES, **kw)


def test_instance_processing_kwargs_merge_with_per_call(cased_dir):
    kw = {"processing_kwargs": {"text": {"max_length": 4}}}
    ours, ref = Transformer(str(cased_dir), **kw).eval(), STTransformer(str(cased_dir), **kw).eval()
    out = run_both(ours, ref, SENTENCES, processing_kwargs={"text": {"padding": "max_length"}}, max_length=9)
    assert out["input_ids"].shape == (5, 4)  # the instance's max_length wins over the max_length kwarg


@pytest.mark.parametrize("task", [None, "query", "document"])
def test_query_and_document_length(cased_dir, task):
    kw = {"query_length": 4, "document_length": 6}
    ours, ref = Transformer(str(cased_dir), **kw).eval(), STTransformer(str(cased_dir), **kw).eval()
    out = run_both(ours, ref, SENTENCES, task=task)
    assert out["input_ids"].shape[1] == {None: 38, "query": 4, "document": 6}[task]
    run_both(ours, ref, SENTENCES, task=task, max_length=5)
    run_both(ours, ref, SENTENCES, task=task, processing_kwargs={"text": {"max_length": 7}})


def test_text_pairs(pair):
    run_both(*pair, [("the cat", "a dog runs"), ["paris", "france"]], prompt="q: ")


def test_text_pairs_mixed_with_single_texts(pair):
    run_both(*pair, [("the cat", "a dog runs"), "paris is big", ("new york", "red car")])


@pytest.mark.parametrize("max_seq_length", [5, 12])
def test_max_seq_length_truncation(cased_dir, max_seq_length):
    ours = Transformer(str(cased_dir), max_seq_length=max_seq_length).eval()
    ref = STTransformer(str(cased_dir), max_seq_length=max_seq_length).eval()
    assert ours.max_seq_length == ref.max_seq_length == max_seq_length
    out = run_both(ours, ref, SENTENCES)
    assert out["input_ids"].shape[1] == max_seq_length
    ours.max_seq_length = 7
    assert ours.preprocess(SENTENCES)["input_ids"].shape[1] == 7


def test_max_seq_length_capped_by_position_embeddings(cased_dir, tmp_path):
    shutil.copytree(cased_dir, tmp_path / "m")
    cfg = json.loads((tmp_path / "m/tokenizer_config.json").read_text())
    (tmp_path / "m/tokenizer_config.json").write_text(json.dumps({**cfg, "model_max_length": 10**6}))
    ours, ref = Transformer(str(tmp_path / "m")), STTransformer(str(tmp_path / "m"))
    assert ours.max_seq_length == ref.max_seq_length == 64


def test_do_lower_case(cased_dir, tmp_path):
    texts = ["THE CAT Runs", "Paris"]
    plain = Transformer(str(cased_dir)).preprocess(texts)["input_ids"]
    ours = Transformer(str(cased_dir), do_lower_case=True).eval()
    ref = STTransformer(str(cased_dir), do_lower_case=True).eval()
    out = run_both(ours, ref, texts, prompt="QUERY: ")
    assert not torch.equal(plain, out["input_ids"])
    assert torch.equal(out["input_ids"], Transformer(str(cased_dir)).preprocess([t.lower() for t in texts],
                                                                                prompt="query: ")["input_ids"])
    ours.save(str(tmp_path / "a"))
    (tmp_path / "b").mkdir()
    ref.save(str(tmp_path / "b"))
    normalizer = json.loads((tmp_path / "a/tokenizer.json").read_text())["normalizer"]
    assert normalizer == json.loads((tmp_path / "b/tokenizer.json").read_text())["normalizer"]
    assert normalizer["normalizers"][0] == {"type": "Lowercase"}
    # reloading behaves as the oracle's (with transformers 5 a BERT tokenizer rebuilds its normalizer from
    # tokenizer_config.json, so the saved Lowercase is dropped by both)
    assert torch.equal(Transformer(str(tmp_path / "a")).preprocess(texts)["input_ids"],
                       STTransformer(str(tmp_path / "b")).preprocess(texts)["input_ids"])


def test_fill_mask_logits(tiny_mlm_dir):
    ours = Transformer(str(tiny_mlm_dir), transformer_task="fill-mask").eval()
    ref = STTransformer(str(tiny_mlm_dir), transformer_task="fill-mask").eval()
    out = run_both(ours, ref, SENTENCES)
    assert out["token_embeddings"].shape[-1] == ours.model.config.vocab_size
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension()
    assert ours.modality_config == ref.modality_config


def test_sequence_classification_scores(cased_dir):
    ours = Transformer(str(cased_dir), transformer_task="sequence-classification").eval()
    ref = STTransformer(str(cased_dir), transformer_task="sequence-classification").eval()
    ours.model.load_state_dict(ref.model.state_dict())
    out = run_both(ours, ref, [("a cat", "the dog"), ("paris", "france")])
    assert out["scores"].shape == (2, 1) and ours.module_output_name == "scores"
    three = Transformer(str(cased_dir), transformer_task="sequence-classification", config_kwargs={"num_labels": 3})
    assert three.model.config.num_labels == 3


def test_hidden_states_output_path(cased_dir):
    kw = {"modality_config": {"text": {"method": "forward", "method_output_name": ["hidden_states", 1]}},
          "module_output_name": "token_embeddings"}
    run_both(Transformer(str(cased_dir), **kw).eval(), STTransformer(str(cased_dir), **kw).eval(), SENTENCES)
    kw = {"config_kwargs": {"output_hidden_states": True}}
    ours = Transformer(str(cased_dir), **kw).eval()
    out = run_both(ours, STTransformer(str(cased_dir), **kw).eval(), SENTENCES)
    assert len(out["all_layer_embeddings"]) == 3


@pytest.mark.slow
def test_minilm_parity(minilm_dir, sts_sentences):
    ours, ref = Transformer(str(minilm_dir)).eval(), STTransformer(str(minilm_dir)).eval()
    run_both(ours, ref, sts_sentences[:48], prompt="query: ")
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == 384


# ------------------------------------------------------------------------------------------------ CLIP / images
@pytest.fixture(scope="module")
def clip_pair(tiny_clip_dir):
    return Transformer(str(tiny_clip_dir)).eval(), STTransformer(str(tiny_clip_dir)).eval()


def test_clip_modalities_and_dimension(clip_pair):
    ours, ref = clip_pair
    assert ours.modalities == ref.modalities == ["text", "image"]
    assert ours.modality_config == ref.modality_config
    assert ours.module_output_name == ref.module_output_name == "sentence_embedding"
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == 16
    assert ours.max_seq_length == ref.max_seq_length


def test_clip_text_and_image(clip_pair, image, tmp_path):
    out = run_both(*clip_pair, ["a photo of a cat", "dog"], prompt="query: ")
    assert out["sentence_embedding"].shape == (2, 16)
    img = run_both(*clip_pair, [image, image.rotate(90)])
    assert img["modality"] == "image" and img["sentence_embedding"].shape == (2, 16)
    image.save(tmp_path / "cat.png")  # an image file path is an image for a model that takes images
    run_both(*clip_pair, [str(tmp_path / "cat.png")])
    single = clip_pair[0].preprocess([{"image": image}])
    assert torch.equal(single["pixel_values"], clip_pair[1].preprocess([image])["pixel_values"])


@pytest.mark.parametrize("inputs", ["mixed", "dict"])
def test_clip_unsupported_combinations_match_oracle_errors(clip_pair, image, inputs):
    batch = ["a cat", image] if inputs == "mixed" else [{"text": "a cat", "image": image}]
    with pytest.raises(ValueError) as ours:
        clip_pair[0].preprocess(batch)
    with pytest.raises(ValueError) as ref:
        clip_pair[1].preprocess(batch)
    assert str(ours.value) == str(ref.value)


def test_image_on_text_model_error(pair, image):
    with pytest.raises(ValueError) as ours:
        pair[0].preprocess([image])
    with pytest.raises(ValueError) as ref:
        pair[1].preprocess([image])
    assert str(ours.value) == str(ref.value) == \
        "Modality 'image' is not supported by this Transformer module. Supported modalities: text."


def test_chat_template_model_uses_messages(chat_dir):
    ours, ref = Transformer(str(chat_dir)).eval(), STTransformer(str(chat_dir)).eval()
    assert ours.modality_config == ref.modality_config and ours.modalities == ["text", "message"]
    run_both(ours, ref, SENTENCES[:3], prompt="query: ")
    run_both(ours, ref, [[{"role": "user", "content": "the cat"}], [{"role": "user", "content": "a dog"}]])


# ------------------------------------------------------------------------------------------------ files
def _save_both(ours, ref, tmp_path):
    a, b = tmp_path / "ours", tmp_path / "st"
    ours.save(str(a))
    b.mkdir()
    ref.save(str(b))
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for f in a.iterdir():
        if f.suffix == ".json":
            assert json.loads(f.read_text()) == json.loads((b / f.name).read_text()), f.name
    return a, b


@pytest.mark.parametrize("which, kw", [
    ("cased", {"max_seq_length": 9, "do_lower_case": True}),
    ("cased", {"processing_kwargs": {"text": {"max_length": 8}}, "unpad_inputs": False, "query_length": 4,
               "document_length": 6}),
    ("mlm", {"transformer_task": "fill-mask"}),
    ("clip", {}),
], ids=["max-seq-lower", "processing-kwargs", "fill-mask", "clip"])
def test_saved_files_equal_oracle_and_round_trip(which, kw, cased_dir, tiny_mlm_dir, tiny_clip_dir, tmp_path):
    src = {"cased": cased_dir, "mlm": tiny_mlm_dir, "clip": tiny_clip_dir}[which]
    ours, ref = Transformer(str(src), **kw).eval(), STTransformer(str(src), **kw).eval()
    a, b = _save_both(ours, ref, tmp_path)
    sbert = json.loads((a / "sentence_bert_config.json").read_text())
    assert "max_seq_length" not in sbert and "do_lower_case" not in sbert
    if "max_seq_length" in kw:
        assert json.loads((a / "tokenizer_config.json").read_text())["model_max_length"] == 9
    # stpipe-saved → sentence-transformers, and sentence-transformers-saved → stpipe
    st_loaded, ours_loaded = STTransformer.load(str(a)).eval(), Transformer.load(str(b)).eval()
    assert ours_loaded.get_config_dict() == st_loaded.get_config_dict() == ref.get_config_dict()
    assert ours_loaded.max_seq_length == st_loaded.max_seq_length == ref.max_seq_length
    inputs = ["the cat runs", "a dog " * 10]
    expected = ref(ref.preprocess(inputs))[ref.module_output_name].detach()
    for loaded in (st_loaded, ours_loaded):
        got = loaded(loaded.preprocess(inputs))[loaded.module_output_name].detach()
        assert (got - expected).abs().max() <= 1e-5
    mixed = ["The Cat", "PARIS"]  # the two reloads also agree where lower-casing matters
    assert torch.equal(st_loaded.preprocess(mixed)["input_ids"], ours_loaded.preprocess(mixed)["input_ids"])


def test_legacy_config_names_and_keys(cased_dir, tmp_path, monkeypatch, caplog):
    import transformers

    root = tmp_path / "m"
    shutil.copytree(cased_dir, root)
    (root / "sentence_roberta_config.json").write_text(json.dumps({
        "max_seq_length": 7, "do_lower_case": True, "query_length": None,
        "model_args": {"attn_implementation": "eager", "trust_remote_code": True},
        "tokenizer_args": {"trust_remote_code": True}, "config_args": {"trust_remote_code": True}}))
    seen = []
    original = transformers.AutoModel.from_pretrained.__func__
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained",
                        classmethod(lambda c, *a, **k: seen.append(k) or original(c, *a, **k)))
    ours = Transformer.load(str(root))
    ref = STTransformer.load(str(root))
    assert "trust_remote_code" not in seen[0] and ours.model.config._attn_implementation == "eager"
    assert ours.max_seq_length == ref.max_seq_length == 7
    assert ours.get_config_dict() == ref.get_config_dict()
    assert torch.equal(ours.preprocess(["THE Cat"])["input_ids"], ref.preprocess(["THE Cat"])["input_ids"])
    Transformer.load(str(root), trust_remote_code=True)
    assert seen[-1]["trust_remote_code"] is True
    # loader kwargs beat the saved ones; overrides (YAML) beat both
    assert Transformer.load(str(root), processor_kwargs={"model_max_length": 11}).max_seq_length == 11
    assert Transformer.load(str(root), processor_kwargs={"model_max_length": 11},
                            overrides={"processor_kwargs": {"model_max_length": 13}}).max_seq_length == 13


def test_load_overrides_model_and_task(cased_dir, tiny_mlm_dir, tmp_path):
    Transformer(str(cased_dir)).save(str(tmp_path / "saved"))
    t = Transformer.load(str(tmp_path / "saved"), overrides={"model_name_or_path": str(tiny_mlm_dir),
                                                             "transformer_task": "fill-mask"})
    assert type(t.model).__name__ == "BertForMaskedLM" and t.modality_config["text"]["method_output_name"] == "logits"


def test_modality_config_keys_and_pre6_chat_model(chat_dir, tmp_path, caplog):
    root = tmp_path / "m"
    shutil.copytree(chat_dir, root)
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 10}))
    ours, ref = Transformer.load(str(root)), STTransformer.load(str(root))
    assert ours.modality_config == ref.modality_config == {
        "text": {"method": "forward", "method_output_name": "last_hidden_state"}}  # pre-6 save: no chat format
    spec = {"method": "forward", "method_output_name": "last_hidden_state"}
    (root / "sentence_bert_config.json").write_text(json.dumps({
        "modality_config": {"text": spec, "image+text": spec, "smell": spec},
        "module_output_name": "token_embeddings"}))
    with caplog.at_level(logging.WARNING):
        ours, ref = Transformer.load(str(root)), STTransformer.load(str(root))
    assert ours.modality_config == ref.modality_config
    assert ("image", "text") in ours.modalities and "smell" in caplog.text
    assert json.loads(json.dumps(ours.get_config_dict())) == ref.get_config_dict()


def test_load_from_hub_cache_offline(cased_dir, tmp_path):
    snap = tmp_path / "cache" / "models--org--tiny" / "snapshots" / ("0" * 40)
    shutil.copytree(cased_dir, snap)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("0" * 40)
    t = Transformer.load("org/tiny", cache_folder=str(tmp_path / "cache"), local_files_only=True)
    assert t.get_embedding_dimension() == 32
    with pytest.raises(LoadError, match="org/missing"):
        Transformer.load("org/missing", cache_folder=str(tmp_path / "cache"), local_files_only=True)


# ------------------------------------------------------------------------------------------------ options & errors
@pytest.mark.parametrize("value, dtype", [("bfloat16", torch.bfloat16), ("float16", torch.float16),
                                          ("torch.float32", torch.float32), ("auto", torch.float32),
                                          (torch.float16, torch.float16)])
@pytest.mark.parametrize("key", ["torch_dtype", "dtype"])
def test_dtype_strings(cased_dir, key, value, dtype):
    t = Transformer(str(cased_dir), model_kwargs={key: value, "attn_implementation": "eager"})
    assert t.model.dtype == dtype and t.model.config._attn_implementation == "eager"


def test_torch_dtype_and_dtype_must_agree(cased_dir):
    with pytest.raises(ValueError, match=r"model_kwargs sets both torch_dtype \(torch.float16\) and dtype "
                                         r"\(torch.bfloat16\), to different values; give only one"):
        Transformer(str(cased_dir), model_kwargs={"torch_dtype": "float16", "dtype": "bfloat16"})
    with pytest.raises(ValueError, match="to different values"):
        Transformer(str(cased_dir), model_kwargs={"torch_dtype": "auto", "dtype": torch.float16})
    same = Transformer(str(cased_dir), model_kwargs={"torch_dtype": "float16", "dtype": torch.float16})
    assert same.model.dtype == torch.float16


def test_unknown_modality_config_method_is_caught_at_load(tiny_clip_dir):
    """A misspelt method is refused when the model loads, naming the modality, the method and the model's methods
    (sentence-transformers fails only at encode time: "Model does not have the requested ... method")."""
    import stpipe
    from stpipe.errors import ConfigError

    config = {"text": {"method": "get_txt_features", "method_output_name": "pooler_output"},
              "image": {"method": "get_image_features", "method_output_name": "pooler_output"}}
    ref = STTransformer(str(tiny_clip_dir), modality_config=config, module_output_name="sentence_embedding")
    with pytest.raises(ValueError, match="^Model does not have the requested 'get_txt_features' method$"):
        ref(ref.preprocess(["a cat"]))
    expected = ("modality_config['text']: CLIPModel has no method 'get_txt_features'; did you mean "
                "'get_text_features'? (available: forward, get_image_features, get_text_features)")
    with pytest.raises(ValueError) as exc:
        Transformer(str(tiny_clip_dir), modality_config=config, module_output_name="sentence_embedding")
    assert str(exc.value) == expected
    node = {"type": "Transformer", "model_name_or_path": str(tiny_clip_dir), "modality_config": config,
            "module_output_name": "sentence_embedding"}
    with pytest.raises(ConfigError) as built:
        stpipe.build({"modules": [node]}, device="cpu")
    problem = built.value.problems[0]
    assert problem.path_str == "modules[0]" and expected in problem.message
    wrong = {"image+text": {"method": "encode", "method_output_name": "x"}}
    with pytest.raises(ValueError, match=r"^modality_config\['image\+text'\]: CLIPModel has no method 'encode' "
                                         r"\(available: forward,"):
        Transformer(str(tiny_clip_dir), modality_config=wrong, module_output_name="sentence_embedding")


def test_bad_dtype(cased_dir):
    with pytest.raises(ValueError, match=r"model_kwargs.torch_dtype: unknown dtype 'flaot16'.*'bfloat16'.*"
                                         r"did you mean 'float16'"):
        Transformer(str(cased_dir), model_kwargs={"torch_dtype": "flaot16"})


@pytest.mark.parametrize("kw, message", [
    ({"backend": "onnx"}, "backend 'onnx': no graph file model.onnx or onnx/model.onnx in the model directory"),
    ({"backend": "tf"}, "unknown backend 'tf'; valid: torch, onnx, openvino"),
    ({"transformer_task": "retrieval"}, "transformer_task 'retrieval' is not supported yet"),
    ({"transformer_task": "fill_mask"}, "did you mean 'fill-mask'"),
    ({"modality_config": {"text": {"method": "forward", "method_output_name": "x"}}}, "module_output_name"),
    ({"modality_config": {"text": {"method": "forward"}}, "module_output_name": "x"}, "'method_output_name'"),
    ({"modality_config": {"smell": {"method": "forward", "method_output_name": None}}, "module_output_name": "x"},
     "unknown modality 'smell'"),
    ({"module_output_name": "scores"}, "needs a modality_config"),
    ({"max_seq_length": 0}, "max_seq_length must be a positive integer"),
    ({"processing_kwargs": {"text": 5}}, "processing_kwargs must map"),
])
def test_bad_params(cased_dir, kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Transformer(str(cased_dir), **kw)


def test_missing_model_is_a_load_error(tmp_path):
    with pytest.raises(LoadError, match="cannot load the Hugging Face config"):
        Transformer(str(tmp_path / "nope"))


def test_module_output_name_equal_to_default_is_accepted(cased_dir):
    assert Transformer(str(cased_dir), module_output_name="token_embeddings").module_output_name == \
        "token_embeddings"


# ------------------------------------------------------------------------------------------------ describe
class Ctx:
    def hf_config(self, name):
        p = Path(name, "config.json")
        return json.loads(p.read_text()) if p.exists() else None


def test_describe(cased_dir, tiny_mlm_dir, tiny_clip_dir):
    d = lambda **p: Transformer.describe(p, {}, Ctx()).produces  # noqa: E731
    assert d(model_name_or_path=str(cased_dir)) == {"input_ids": None, "attention_mask": None,
                                                    "token_embeddings": 32}
    vocab = json.loads((tiny_mlm_dir / "config.json").read_text())["vocab_size"]
    assert d(model_name_or_path=str(tiny_mlm_dir), transformer_task="fill-mask")["token_embeddings"] == vocab
    assert d(model_name_or_path=str(tiny_clip_dir))["sentence_embedding"] == 16
    assert d(model_name_or_path=str(cased_dir), transformer_task="sequence-classification")["scores"] == 1
    assert d(model_name_or_path=str(cased_dir), transformer_task="sequence-classification",
             config_kwargs={"num_labels": 3})["scores"] == 3
    assert Transformer.describe({"model_name_or_path": str(cased_dir)}, {}, None).produces["token_embeddings"] is None
    custom = d(model_name_or_path=str(cased_dir), module_output_name="hidden",
               modality_config={"text": {"method": "forward", "method_output_name": "last_hidden_state"}})
    assert custom["hidden"] == 32
    # the static description agrees with the loaded modules
    for path, kw in [(cased_dir, {}), (tiny_clip_dir, {}), (tiny_mlm_dir, {"transformer_task": "fill-mask"})]:
        t = Transformer(str(path), **kw)
        produced = d(model_name_or_path=str(path), **kw)
        assert t.module_output_name in produced
