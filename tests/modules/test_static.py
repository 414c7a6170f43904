"""StaticEmbedding against sentence-transformers' StaticEmbedding (the oracle) on a tiny WordPiece tokenizer."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sentence_transformers.sentence_transformer.modules import StaticEmbedding as STStatic
from tokenizers import Tokenizer

from stpipe.errors import LoadError
from stpipe.modules.static import StaticEmbedding

TEXTS = ["the cat runs", "", "What is the capital of France?", "a dog and a cat", "zzz unknownword"]


@pytest.fixture(scope="module")
def tok_dir(tiny_bert_dir):
    """The tiny BERT's fast WordPiece tokenizer (tokenizer.json)."""
    return tiny_bert_dir


@pytest.fixture()
def tok(tok_dir) -> Tokenizer:
    return Tokenizer.from_file(str(tok_dir / "tokenizer.json"))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().float() - b.detach().float()).abs().max().item()


def test_random_init_matches_oracle_for_the_same_seed(tok):
    torch.manual_seed(7)
    ref = STStatic(tok, embedding_dim=16)
    torch.manual_seed(7)
    ours = StaticEmbedding(tok, embedding_dim=16)
    assert torch.equal(ours.embedding.weight, ref.embedding.weight)
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == 16
    assert ours.max_seq_length == ref.max_seq_length == math.inf
    assert ours.modalities == ref.modalities


@pytest.mark.parametrize("prompt", [None, "query: "])
def test_preprocess_and_forward_match_oracle(tok, prompt):
    w = torch.randn(tok.get_vocab_size(), 8, generator=torch.Generator().manual_seed(0))
    ref, ours = STStatic(tok, embedding_weights=w.numpy()), StaticEmbedding(tok, embedding_weights=w.numpy())
    f_ref, f_ours = ref.preprocess(TEXTS, prompt=prompt), ours.preprocess(TEXTS, prompt=prompt)
    assert torch.equal(f_ours["input_ids"], f_ref["input_ids"]) and torch.equal(f_ours["offsets"], f_ref["offsets"])
    out_ref, out = ref(dict(f_ref))["sentence_embedding"], ours(dict(f_ours))["sentence_embedding"]
    assert out.shape == (len(TEXTS), 8)
    assert _max_diff(out, out_ref) <= 1e-5
    if prompt is None:
        assert torch.count_nonzero(out[1]) == 0  # an empty text is a zero vector


def test_text_pairs_match_oracle(tok):
    """A pair is one input: the tokens of both texts (tokenizers' pair encoding, no special tokens). The oracle
    module cannot take a prompt with a pair; its model prepends the prompt to the first text, as stpipe does."""
    w = torch.randn(tok.get_vocab_size(), 8, generator=torch.Generator().manual_seed(1))
    ref, ours = STStatic(tok, embedding_weights=w.numpy()), StaticEmbedding(tok, embedding_weights=w.numpy())
    batch = [("the cat runs", "a dog"), "What is the capital of France?", ["zzz", "the cat"]]
    as_tuples = [tuple(x) if isinstance(x, list) else x for x in batch]
    for prompt in (None, "query: "):
        f_ours = ours.preprocess(batch, prompt=prompt)
        f_ref = ref.preprocess([(prompt + x[0], x[1]) if isinstance(x, tuple) else prompt + x for x in as_tuples]
                               if prompt else batch)
        assert torch.equal(f_ours["input_ids"], f_ref["input_ids"]) and torch.equal(f_ours["offsets"],
                                                                                     f_ref["offsets"])
        assert _max_diff(ours(dict(f_ours))["sentence_embedding"], ref(dict(f_ref))["sentence_embedding"]) <= 1e-5
    assert torch.equal(ours.preprocess([("the cat", "a dog")])["input_ids"],
                       ours.preprocess(["the cat a dog"])["input_ids"])


def test_mean_of_rows_by_independent_math(tok):
    w = torch.arange(tok.get_vocab_size() * 2, dtype=torch.float32).view(-1, 2)
    ours = StaticEmbedding(tok, embedding_weights=w)
    ids = tok.encode("the cat", add_special_tokens=False).ids
    out = ours(ours.preprocess(["the cat"]))["sentence_embedding"][0]
    assert torch.allclose(out, w[ids].mean(0))


def test_hf_fast_tokenizer_and_path_are_accepted_and_not_mutated(tok_dir, tok):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(tok_dir)
    hf._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    w = torch.randn(tok.get_vocab_size(), 4)
    for given in (hf, str(tok_dir), str(tok_dir / "tokenizer.json"), tok):
        ours = StaticEmbedding(given, embedding_weights=w)
        ref = STStatic(tok, embedding_weights=w)
        assert torch.equal(ours.preprocess(TEXTS)["input_ids"], ref.preprocess(TEXTS)["input_ids"])
    assert hf._tokenizer.padding is not None  # stpipe copies the tokenizer; the caller's keeps its padding


def test_errors():
    with pytest.raises(ValueError, match="Either `embedding_weights` or `embedding_dim` must be provided."):
        StaticEmbedding(Tokenizer.from_str(_wordlevel()))
    with pytest.raises(ValueError, match="does not match"):
        StaticEmbedding(Tokenizer.from_str(_wordlevel()), embedding_weights=torch.ones(3, 2), embedding_dim=4)
    with pytest.raises(ValueError, match="matrix"):
        StaticEmbedding(Tokenizer.from_str(_wordlevel()), embedding_weights=torch.ones(3))
    with pytest.raises(TypeError, match="tokenizer"):
        StaticEmbedding(42, embedding_dim=2)
    with pytest.raises(LoadError, match="no tokenizer.json"):
        StaticEmbedding(str(_tmpdir()), embedding_dim=2)
    with pytest.raises(TypeError, match="text only"):
        StaticEmbedding(Tokenizer.from_str(_wordlevel()), embedding_dim=2).preprocess([{"image": 1}])


def _wordlevel() -> str:
    from tokenizers import models

    return Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "cat": 2}, unk_token="[UNK]")).to_str()


def _tmpdir():
    import tempfile

    return tempfile.mkdtemp()


def test_save_is_loaded_by_oracle_and_back(tok, tmp_path):
    torch.manual_seed(3)
    ours = StaticEmbedding(tok, embedding_dim=8)
    ours.save(str(tmp_path / "s"))
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["model.safetensors", "tokenizer.json"]
    ref = STStatic.load(str(tmp_path / "s"))
    assert torch.equal(ref.embedding.weight, ours.embedding.weight)
    again = StaticEmbedding.load(str(tmp_path / "s"))
    assert torch.equal(again.embedding.weight, ours.embedding.weight)
    f = ref.preprocess(TEXTS)
    assert _max_diff(again(again.preprocess(TEXTS))["sentence_embedding"], ref(f)["sentence_embedding"]) <= 1e-5


def test_loads_oracle_save(tok, tmp_path):
    torch.manual_seed(4)
    ref = STStatic(tok, embedding_dim=6)
    (tmp_path / "st").mkdir()
    ref.save(str(tmp_path / "st"))
    ours = StaticEmbedding.load(str(tmp_path / "st"))
    assert _max_diff(ours(ours.preprocess(TEXTS))["sentence_embedding"],
                     ref(ref.preprocess(TEXTS))["sentence_embedding"]) <= 1e-5


@pytest.mark.parametrize("layout", ["plain", "mapping+weights", "weights", "mapping"])
def test_model2vec_files_load_like_oracle(tok, tmp_path, layout):
    vocab = tok.get_vocab_size()
    g = torch.Generator().manual_seed(1)
    tensors = {"embeddings": torch.randn(vocab if "mapping" not in layout else 10, 4, generator=g)}
    if "mapping" in layout:
        tensors["mapping"] = torch.randint(0, 10, (vocab,), generator=g)
    if "weights" in layout:
        tensors["weights"] = torch.rand(vocab, generator=g)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "model2vec"}))
    ours, ref = StaticEmbedding.load(str(tmp_path)), STStatic.load(str(tmp_path))
    assert _max_diff(ours.embedding.weight, ref.embedding.weight) == 0.0


def test_load_errors_name_the_folder(tok, tmp_path):
    save_file({"foo": torch.ones(3, 2)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(LoadError, match="no tokenizer.json"):
        StaticEmbedding.load(str(tmp_path))
    tok.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(LoadError, match=r"no embedding matrix.*foo") as exc:
        StaticEmbedding.load(str(tmp_path))
    assert str(tmp_path) in str(exc.value)


def test_describe_and_numpy_float64():
    assert StaticEmbedding.describe({"embedding_dim": 32}, {}).produces == {"sentence_embedding": 32}
    assert StaticEmbedding.describe({"embedding_weights": [[0.0, 1.0]]}, {}).produces == {"sentence_embedding": 2}
    assert StaticEmbedding.describe({"tokenizer": "x"}, {}).produces == {"sentence_embedding": None}
    emb = StaticEmbedding(Tokenizer.from_str(_wordlevel()), embedding_weights=np.ones((3, 2)))
    assert emb.embedding.weight.dtype == torch.float64  # as sentence-transformers: the given dtype is kept
