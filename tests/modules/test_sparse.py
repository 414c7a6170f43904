"""SparseStaticEmbedding and SpladePooling against sentence-transformers' modules (the oracle)."""

from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding as STSparseStatic
from sentence_transformers.sparse_encoder.modules import SpladePooling as STSplade

from stpipe.errors import LoadError
from stpipe.modules.sparse import SparseStaticEmbedding, SpladePooling

TEXTS = ["the cat runs and the cat", "", "What is the weather in new york now?", "zzz qqq", "a dog"]
IDF = {"the": 0.5, "cat": 2.0, "weather": 3.5, "new": 1.25, "zzz": 7.0, "qqq": 9.0, "##s": 0.1, "?": 0.3}


@pytest.fixture(scope="module")
def tok_dir(tiny_bert_dir):
    """The tiny BERT's fast WordPiece tokenizer (tokenizer.json)."""
    return tiny_bert_dir


@pytest.fixture()
def hf_tok(tok_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tok_dir)
    assert len(tok) > 100
    return tok


@pytest.fixture(scope="module")
def idf_file(tmp_path_factory):
    f = tmp_path_factory.mktemp("idf") / "idf.json"
    f.write_text(json.dumps(IDF))
    return f


def _same_sparse(a: torch.Tensor, b: torch.Tensor) -> None:
    """Same non-zero indices, same values (≤ 1e-5)."""
    assert a.shape == b.shape
    assert torch.equal(a.nonzero(), b.nonzero())
    assert (a - b).abs().max().item() <= 1e-5


# ============================================================================ SparseStaticEmbedding
@pytest.mark.parametrize("prompt", [None, "query: "])
def test_default_weights_match_oracle(hf_tok, prompt):
    ref, ours = STSparseStatic(hf_tok), SparseStaticEmbedding(hf_tok)
    f_ref, f_ours = ref.preprocess(TEXTS, prompt=prompt), ours.preprocess(TEXTS, prompt=prompt)
    assert f_ours.keys() == f_ref.keys()
    assert all(torch.equal(f_ours[k], f_ref[k]) for k in f_ref)
    _same_sparse(ours(dict(f_ours))["sentence_embedding"], ref(dict(f_ref))["sentence_embedding"])
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == len(hf_tok)
    assert ours.max_seq_length == ref.max_seq_length == 64
    assert ours.weight.requires_grad and not SparseStaticEmbedding(hf_tok, frozen=True).weight.requires_grad


def test_text_pairs_match_oracle(hf_tok, idf_file):
    """A pair is tokenized as a pair (the tokenizer's own pair handling); with a prompt, the oracle's model
    prepends it to the first text, as stpipe's module does."""
    ref = STSparseStatic.from_json(str(idf_file), tokenizer=hf_tok)
    ours = SparseStaticEmbedding.from_json(str(idf_file), tokenizer=hf_tok)
    batch = [("the cat runs", "the weather in new york"), "zzz qqq", ["a dog", "the cat"]]
    for prompt in (None, "query: "):
        f_ours = ours.preprocess(batch, prompt=prompt)
        f_ref = ref.preprocess([(prompt or "") + x if isinstance(x, str) else ((prompt or "") + x[0], x[1])
                                for x in batch])
        assert f_ours.keys() == f_ref.keys() and all(torch.equal(f_ours[k], f_ref[k]) for k in f_ref)
        _same_sparse(ours(dict(f_ours))["sentence_embedding"], ref(dict(f_ref))["sentence_embedding"])
    assert f_ours["token_type_ids"][0].max() == 1  # the second text of the pair


def test_from_json_matches_oracle(hf_tok, idf_file):
    ref = STSparseStatic.from_json(str(idf_file), tokenizer=hf_tok, frozen=True)
    ours = SparseStaticEmbedding.from_json(str(idf_file), tokenizer=hf_tok, frozen=True)
    assert torch.equal(ours.weight, ref.weight) and ours.frozen is ref.frozen is True
    assert not ours.weight.requires_grad
    f = ref.preprocess(TEXTS)
    _same_sparse(ours(ours.preprocess(TEXTS))["sentence_embedding"], ref(dict(f))["sentence_embedding"])


def test_each_token_counts_once_and_existing_embedding_is_multiplied(hf_tok, idf_file):
    ours = SparseStaticEmbedding.from_json(str(idf_file), tokenizer=hf_tok)
    out = ours(ours.preprocess(["the cat the cat"]))["sentence_embedding"][0]
    ids = hf_tok.convert_tokens_to_ids(["the", "cat"])
    expected = torch.zeros(len(hf_tok))
    expected[ids] = torch.tensor([IDF["the"], IDF["cat"]])
    assert torch.equal(out.detach(), expected)
    scale = torch.rand(2, len(hf_tok), generator=torch.Generator().manual_seed(0))
    ref = STSparseStatic.from_json(str(idf_file), tokenizer=hf_tok)
    f = ours.preprocess(TEXTS[:2])
    _same_sparse(ours({**f, "sentence_embedding": scale})["sentence_embedding"],
                 ref({**f, "sentence_embedding": scale})["sentence_embedding"])


def test_tokenizer_and_json_by_path(tok_dir, idf_file, hf_tok, tmp_path):
    ref = STSparseStatic.from_json(str(idf_file), tokenizer=hf_tok)
    ours = SparseStaticEmbedding(str(tok_dir), path=str(idf_file), frozen=True)
    assert torch.equal(ours.weight, ref.weight)
    (tmp_path / "idf.json").write_text(json.dumps(IDF))
    assert torch.equal(SparseStaticEmbedding.from_json(str(tmp_path), tokenizer=hf_tok).weight, ref.weight)


def test_save_load_both_ways(hf_tok, idf_file, tmp_path):
    ours = SparseStaticEmbedding.from_json(str(idf_file), tokenizer=hf_tok, frozen=True)
    ours.save(str(tmp_path / "ours"))
    assert json.loads((tmp_path / "ours" / "config.json").read_text()) == {"frozen": True}
    ref = STSparseStatic.load(str(tmp_path / "ours"))
    assert torch.equal(ref.weight, ours.weight) and ref.frozen is True
    _same_sparse(ref(ref.preprocess(TEXTS))["sentence_embedding"], ours(ours.preprocess(TEXTS))["sentence_embedding"])
    st_model = STSparseStatic.from_json(str(idf_file), tokenizer=hf_tok)
    (tmp_path / "st").mkdir()
    st_model.save(str(tmp_path / "st"))
    back = SparseStaticEmbedding.load(str(tmp_path / "st"))
    assert torch.equal(back.weight, st_model.weight) and back.frozen is False and back.weight.requires_grad


def test_load_with_json_path_in_config(tok_dir, idf_file, hf_tok, tmp_path):
    import shutil

    shutil.copytree(tok_dir, tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({"frozen": True, "path": str(idf_file)}))
    ref, ours = STSparseStatic.load(str(tmp_path / "m")), SparseStaticEmbedding.load(str(tmp_path / "m"))
    assert torch.equal(ours.weight, ref.weight) and ours.frozen is ref.frozen is True
    (tmp_path / "m" / "my_idf.json").write_text(json.dumps({"cat": 4.0}))  # relative: looked up in the folder
    (tmp_path / "m" / "config.json").write_text(json.dumps({"frozen": False, "path": "my_idf.json"}))
    rel = SparseStaticEmbedding.load(str(tmp_path / "m"))
    assert rel.weight.nonzero().flatten().tolist() == [hf_tok.convert_tokens_to_ids("cat")]


def test_errors(hf_tok, idf_file, tmp_path):
    with pytest.raises(ValueError, match="one value per vocabulary token"):
        SparseStaticEmbedding(hf_tok, weight=torch.ones(3))
    with pytest.raises(ValueError, match="not both"):
        SparseStaticEmbedding(hf_tok, weight=torch.ones(len(hf_tok)), path=str(idf_file))
    with pytest.raises(LoadError, match="IDF JSON file not found"):
        SparseStaticEmbedding.from_json(str(tmp_path / "nope.json"), tokenizer=hf_tok)
    (tmp_path / "bad.json").write_text(json.dumps(["the", "cat"]))
    with pytest.raises(LoadError, match=r"\{token: weight\}") as exc:
        SparseStaticEmbedding.from_json(str(tmp_path / "bad.json"), tokenizer=hf_tok)
    assert "bad.json" in str(exc.value)
    with pytest.raises(TypeError, match="text only"):
        SparseStaticEmbedding(hf_tok).preprocess([{"image": 1}])


def test_describe(tok_dir, hf_tok):
    assert SparseStaticEmbedding.describe({"tokenizer": str(tok_dir)}, {}).produces == {
        "sentence_embedding": len(hf_tok)}
    assert SparseStaticEmbedding.describe({"weight": [1.0, 2.0]}, {}).produces == {"sentence_embedding": 2}
    assert SparseStaticEmbedding.describe({"tokenizer": "not/a/dir"}, {}).produces == {"sentence_embedding": None}


# ============================================================================ SpladePooling
@pytest.fixture(scope="module")
def mlm_batch(tiny_mlm_dir, tok_dir):
    """Fill-mask logits (B, T, V) of the tiny BertForMaskedLM and the attention mask (right padding)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tok_dir)
    model = AutoModelForMaskedLM.from_pretrained(tiny_mlm_dir).eval()
    enc = tok(TEXTS, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    return logits, enc["attention_mask"]


@pytest.mark.parametrize("strategy", ["max", "sum"])
@pytest.mark.parametrize("activation", ["relu", "log1p_relu"])
@pytest.mark.parametrize("chunk_size", [None, 3])
def test_splade_matches_oracle(mlm_batch, strategy, activation, chunk_size):
    logits, mask = mlm_batch
    feats = {"token_embeddings": logits, "attention_mask": mask}
    ref = STSplade(strategy, activation, chunk_size=chunk_size)(dict(feats))["sentence_embedding"]
    ours_mod = SpladePooling(strategy, activation, chunk_size=chunk_size)
    ours = ours_mod(dict(feats))["sentence_embedding"]
    _same_sparse(ours, ref)
    assert ours_mod.get_embedding_dimension() == logits.shape[-1]


@pytest.mark.parametrize("strategy", ["max", "sum"])
def test_splade_by_independent_math_and_flattened_input(mlm_batch, strategy):
    logits, mask = mlm_batch
    z = torch.log1p(torch.relu(logits)) * mask[..., None]
    expected = z.amax(1) if strategy == "max" else z.sum(1)
    padded = SpladePooling(strategy)({"token_embeddings": logits, "attention_mask": mask})["sentence_embedding"]
    assert (padded - expected).abs().max().item() <= 1e-5
    lengths = mask.sum(1).tolist()
    flat = torch.cat([logits[i, :n] for i, n in enumerate(lengths)])[None]
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    flat_out = SpladePooling(strategy)({"token_embeddings": flat, "cu_seq_lens_q": cu})["sentence_embedding"]
    assert (flat_out - expected).abs().max().item() <= 1e-5


def test_splade_config_errors_and_files(tmp_path):
    for bad in (dict(pooling_strategy="mean"), dict(activation_function="gelu")):
        with pytest.raises(ValueError) as expected:
            STSplade(**bad)
        with pytest.raises(ValueError) as got:
            SpladePooling(**bad)
        assert str(got.value) == str(expected.value)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        SpladePooling(chunk_size=0)
    ours = SpladePooling("sum", "log1p_relu")
    ours(dict(token_embeddings=torch.randn(1, 2, 11), attention_mask=torch.ones(1, 2)))
    ours.save(str(tmp_path / "p"))
    ref = STSplade.load(str(tmp_path / "p"))
    assert ref.get_config_dict() == ours.get_config_dict() == {
        "pooling_strategy": "sum", "activation_function": "log1p_relu", "embedding_dimension": 11}
    (tmp_path / "q").mkdir()
    STSplade("max", "relu").save(str(tmp_path / "q"))
    saved = str(tmp_path / "q")
    assert SpladePooling.load(saved).get_config_dict() == STSplade.load(saved).get_config_dict()


def test_splade_describe():
    io = SpladePooling.describe({"pooling_strategy": "max"}, {"token_embeddings": 30522})
    assert io.consumes == {"token_embeddings": "", "attention_mask": ""}
    assert io.produces == {"sentence_embedding": 30522} and io.requires_dim == []
    io = SpladePooling.describe({"embedding_dimension": 100}, {})
    assert io.produces == {"sentence_embedding": 100}
    assert io.requires_dim == [("token_embeddings", 100, "embedding_dimension")]
