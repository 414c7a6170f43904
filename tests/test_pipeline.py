"""Pipeline runtime: the encode contract (sentence-transformers 6.2 §6), similarity, sparse output.

Unit tests use tiny fake modules whose output is computed independently here; parity with
sentence-transformers on a real (tiny) BERT is in the second half.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stpipe.modules.module import InputModule, Module
from stpipe.pipeline import Pipeline, input_length, is_single_input

WORDS = "the cat sat on mat dog ran far away query document a b c d e f g".split()
VOCAB = {w: i + 2 for i, w in enumerate(WORDS)}  # 0 = pad, 1 = cls


class Toy(InputModule):
    """Word-level toy encoder: token_embeddings = Embedding(ids); records what preprocess received."""

    def __init__(self, dim: int = 6, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.emb = torch.nn.Embedding(len(VOCAB) + 3, dim)
        self.emb.weight.data = torch.randn(len(VOCAB) + 3, dim, generator=gen)
        self.dim = dim
        self.calls: list[dict] = []

    def ids(self, text: str) -> list[int]:
        return [1] + [VOCAB.get(w, len(VOCAB) + 2) for w in text.lower().split()]

    def preprocess(self, inputs, prompt=None, **kwargs):
        self.calls.append({"inputs": list(inputs), "prompt": prompt, **kwargs})
        rows = [self.ids((prompt or "") + x) for x in inputs]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}

    def forward(self, features, **kwargs):
        features["token_embeddings"] = self.emb(features["input_ids"])
        return features

    def get_embedding_dimension(self) -> int:
        return self.dim

    def save(self, output_path, *args, safe_serialization=True, **kwargs):
        self.save_torch_weights(output_path, safe_serialization)


class Mean(Module):
    def forward(self, features, **kwargs):
        m = features["attention_mask"].unsqueeze(-1).float()
        features["sentence_embedding"] = (features["token_embeddings"] * m).sum(1) / m.sum(1)
        return features

    def save(self, output_path, *args, safe_serialization=True, **kwargs):
        pass


class Probe(Module):
    """Records the kwargs its forward receives."""

    forward_kwargs = {"foo"}

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict] = []

    def forward(self, features, **kwargs):
        self.seen.append(kwargs)
        return features

    def save(self, output_path, *args, safe_serialization=True, **kwargs):
        pass


def expected(toy: Toy, text: str, prompt: str = "") -> np.ndarray:
    """Independent: mean of the embedding rows of [CLS] + words."""
    w = toy.emb.weight.detach().numpy()
    return w[toy.ids(prompt + text)].mean(axis=0)


TEXTS = ["the cat sat on the mat", "dog", "a b c d e f g the cat", "ran far away", "query", "the dog ran"]


@pytest.fixture
def toy_pipe():
    toy = Toy()
    return Pipeline([toy, Mean()], device="cpu"), toy


def test_encode_default_numpy_in_input_order(toy_pipe):
    pipe, toy = toy_pipe
    out = pipe.encode(TEXTS, batch_size=2)
    assert isinstance(out, np.ndarray) and out.shape == (len(TEXTS), 6) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.stack([expected(toy, t) for t in TEXTS]), atol=1e-6)
    # batches were formed longest first (character length), not in input order
    assert toy.calls[0]["inputs"] == ["the cat sat on the mat", "a b c d e f g the cat"]


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_batch_size_does_not_change_results(toy_pipe, batch_size):
    pipe, toy = toy_pipe
    np.testing.assert_allclose(pipe.encode(TEXTS, batch_size=batch_size),
                               np.stack([expected(toy, t) for t in TEXTS]), atol=1e-6)


def test_single_input_and_output_types(toy_pipe):
    pipe, toy = toy_pipe
    one = pipe.encode("the cat")
    assert one.shape == (6,)
    np.testing.assert_allclose(one, expected(toy, "the cat"), atol=1e-6)
    t = pipe.encode(TEXTS, convert_to_tensor=True)
    assert isinstance(t, torch.Tensor) and t.shape == (6, 6)
    lst = pipe.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(lst, list) and len(lst) == 6 and isinstance(lst[0], torch.Tensor)
    assert pipe.encode([]).shape == (0,)
    assert pipe.encode(np.array(TEXTS)).shape == (6, 6)  # a numpy str array is a batch
    assert pipe.encode(tuple(TEXTS)).shape == (6, 6)


def test_batch_size_must_be_positive(toy_pipe):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        toy_pipe[0].encode(TEXTS, batch_size=0)


def test_prompt_precedence(toy_pipe):
    pipe, toy = toy_pipe
    pipe.prompts.update({"query": "query ", "document": "document "})
    pipe.encode("cat")
    assert toy.calls[-1]["prompt"] is None  # no default prompt
    pipe.encode("cat", prompt_name="query")
    assert toy.calls[-1]["prompt"] == "query "
    pipe.encode("cat", prompt="a ", prompt_name="query")  # explicit prompt wins
    assert toy.calls[-1]["prompt"] == "a "
    pipe.default_prompt_name = "document"
    out = pipe.encode("cat")
    assert toy.calls[-1]["prompt"] == "document "
    np.testing.assert_allclose(out, expected(toy, "cat", "document "), atol=1e-6)
    pipe.encode_query("cat")  # the query prompt, not the default, and task=query
    assert toy.calls[-1]["prompt"] == "query " and toy.calls[-1]["task"] == "query"
    pipe.encode_document("cat")
    assert toy.calls[-1]["prompt"] == "document " and toy.calls[-1]["task"] == "document"


def test_unknown_prompt_name_lists_names(toy_pipe):
    with pytest.raises(ValueError, match=r"Prompt name 'qeury' not found.*\['query', 'document'\]"):
        toy_pipe[0].encode("x", prompt_name="qeury")


def test_default_prompt_name_must_exist():
    with pytest.raises(ValueError, match="Default prompt name 'nope' not found"):
        Pipeline([Toy(), Mean()], default_prompt_name="nope", device="cpu")


def test_kwargs_routing_and_rejection():
    probe = Probe()
    toy = Toy()
    pipe = Pipeline([toy, Mean(), probe], device="cpu")
    assert pipe.get_model_kwargs() == ["foo"]
    pipe.encode(["cat"], foo=3, task="query")
    assert probe.seen[-1] == {"foo": 3}  # task is not in Probe's forward_kwargs
    assert toy.calls[-1]["task"] == "query" and toy.calls[-1]["foo"] == 3  # preprocess receives all
    with pytest.raises(ValueError, match=r"no module of this pipeline uses: \['bar'\]"):
        pipe.encode(["cat"], bar=1)
    with pytest.raises(ValueError, match="modality= is only accepted"):
        pipe.encode(["cat"], modality="text")
    pipe2 = Pipeline([Toy(), Mean(), Probe()], device="cpu", module_kwargs={"1": ["baz"]})
    assert pipe2.get_model_kwargs() == ["baz", "foo"]


def test_truncate_then_normalize(toy_pipe):
    pipe, toy = toy_pipe
    full = np.stack([expected(toy, t) for t in TEXTS])
    out = pipe.encode(TEXTS, truncate_dim=3, normalize_embeddings=True)
    ref = full[:, :3] / np.linalg.norm(full[:, :3], axis=1, keepdims=True)
    np.testing.assert_allclose(out, ref, atol=1e-6)
    with pipe.truncate_embeddings(4):
        assert pipe.encode(TEXTS).shape == (6, 4)
        assert pipe.get_embedding_dimension() == 4
    assert pipe.get_embedding_dimension() == 6 == pipe.get_sentence_embedding_dimension()


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "4"])
def test_truncate_dim_must_be_positive(toy_pipe, bad):
    """truncate_dim=0 would return (N, 0) embeddings; every way of setting it is checked."""
    pipe, _ = toy_pipe
    with pytest.raises(ValueError, match=rf"^truncate_dim must be a positive integer .* or None, got {bad!r}$"):
        pipe.encode(TEXTS, truncate_dim=bad)
    with pytest.raises(ValueError, match="truncate_dim must be a positive integer"):
        Pipeline([Toy(), Mean()], truncate_dim=bad, device="cpu")
    with pytest.raises(ValueError, match="truncate_dim must be a positive integer"), pipe.truncate_embeddings(bad):
        pass
    assert pipe.truncate_dim is None and pipe.encode(TEXTS, truncate_dim=1).shape == (len(TEXTS), 1)


def test_precision_variants(toy_pipe):
    pipe, toy = toy_pipe
    full = np.stack([expected(toy, t) for t in TEXTS]).astype(np.float32)
    lo, hi = full.min(0), full.max(0)
    steps = (hi - lo) / 255
    q = np.clip(np.floor((full - lo) / steps), 0, 255)
    np.testing.assert_array_equal(pipe.encode(TEXTS, precision="uint8"), q.astype(np.uint8))
    np.testing.assert_array_equal(pipe.encode(TEXTS, precision="int8"), (q - 128).astype(np.int8))
    bits = full > 0  # 6 dims → one byte, big-endian bit order
    ub = np.array([[sum(int(b) << (7 - i) for i, b in enumerate(row))] for row in bits], dtype=np.uint8)
    np.testing.assert_array_equal(pipe.encode(TEXTS, precision="ubinary"), ub)
    np.testing.assert_array_equal(pipe.encode(TEXTS, precision="binary"), (ub.astype(int) - 128).astype(np.int8))
    assert pipe.encode(TEXTS, precision="int8", convert_to_tensor=True).dtype == torch.int8
    with pytest.raises(ValueError, match="Precision 'float16' is not supported"):
        pipe.encode(TEXTS, precision="float16")


def test_output_values(toy_pipe):
    pipe, toy = toy_pipe
    toks = pipe.encode(["the cat", "dog"], output_value="token_embeddings")
    assert [t.shape for t in toks] == [(3, 6), (2, 6)]  # trimmed to the real tokens
    w = toy.emb.weight.detach()
    torch.testing.assert_close(toks[1], w[toy.ids("dog")])
    rows = pipe.encode(["the cat", "dog"], output_value=None)
    assert isinstance(rows, list) and set(rows[0]) >= {"input_ids", "sentence_embedding"}
    assert rows[1]["input_ids"].shape == (3,)  # padded width of that batch
    with pytest.raises(ValueError, match="produced no 'scores'"):
        pipe.encode(["x"], output_value="scores")


def test_similarity_functions_independent_math(toy_pipe):
    pipe, _ = toy_pipe
    a = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    b = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    na, nb = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    ref = {
        "cosine": na @ nb.T,
        "dot": a @ b.T,
        "euclidean": -np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)),
        "manhattan": -np.abs(a[:, None] - b[None]).sum(-1),
    }
    assert pipe.similarity_fn_name == "cosine"  # lazy default
    for name, matrix in ref.items():
        pipe.similarity_fn_name = name
        np.testing.assert_allclose(pipe.similarity(a, b).numpy(), matrix, atol=1e-5)
        np.testing.assert_allclose(pipe.similarity_pairwise(a, b[:3]).numpy(), np.diag(matrix[:, :3]), atol=1e-5)
        sa, sb = torch.from_numpy(a).to_sparse(), torch.from_numpy(b).to_sparse()
        np.testing.assert_allclose(pipe.similarity(sa, sb).numpy(), matrix, atol=1e-5)
        np.testing.assert_allclose(pipe.similarity(sa, b).numpy(), matrix, atol=1e-5)  # mixed layouts
        sb3 = torch.from_numpy(b[:3]).to_sparse()
        np.testing.assert_allclose(pipe.similarity_pairwise(sa, sb3).numpy(), np.diag(matrix[:, :3]), atol=1e-5)
    assert pipe.similarity(a[0], b).shape == (1, 4)  # 1-D is a batch of one
    with pytest.raises(ValueError, match="similarity_fn_name must be one of"):
        pipe.similarity_fn_name = "maxsim"


class Relu(Module):
    """Sparse-ish head: relu of a projection to a 'vocabulary' of len(VOCAB) + 3 ids."""

    def __init__(self, dim: int, vocab: int) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(dim, vocab)

    def forward(self, features, **kwargs):
        features["sentence_embedding"] = torch.relu(self.proj(features["sentence_embedding"]))
        return features

    def get_embedding_dimension(self):
        return self.proj.out_features

    def save(self, output_path, *args, safe_serialization=True, **kwargs):
        pass


class ToyTokenizer:
    def convert_ids_to_tokens(self, ids):
        inv = {i: w for w, i in VOCAB.items()}
        return [inv.get(i, f"#{i}") for i in ids]


def test_sparse_encoder_output_and_decode():
    torch.manual_seed(0)
    toy = Toy()
    toy.tokenizer = ToyTokenizer()
    pipe = Pipeline([toy, Mean(), Relu(6, len(VOCAB) + 3)], model_type="SparseEncoder", device="cpu")
    assert pipe.similarity_fn_name == "dot"
    emb = pipe.encode(TEXTS)
    assert emb.is_sparse and emb.shape == (6, len(VOCAB) + 3)
    dense = Pipeline([toy, Mean(), pipe[2]], device="cpu").encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(emb.to_dense(), dense)
    assert pipe.encode(TEXTS, convert_to_sparse_tensor=False).is_sparse is False
    assert isinstance(pipe.encode(TEXTS, convert_to_tensor=False), list)
    one = pipe.encode("the cat")
    assert one.is_sparse and one.shape == (len(VOCAB) + 3,)
    top2 = pipe.encode(TEXTS, max_active_dims=2).to_dense()
    assert ((top2 != 0).sum(1) <= 2).all()
    decoded = pipe.decode(one)
    row = dense[TEXTS.index("the cat") if "the cat" in TEXTS else 0]
    ref = Pipeline([toy, Mean(), pipe[2]], device="cpu").encode("the cat", convert_to_tensor=True)
    nz = torch.nonzero(ref).flatten()
    order = nz[torch.argsort(ref[nz], descending=True)]
    assert [t for t, _ in decoded] == ToyTokenizer().convert_ids_to_tokens(order.tolist())
    assert [w for _, w in decoded] == pytest.approx(ref[order].tolist())
    assert row.shape == ref.shape
    batch = pipe.decode(pipe.encode(TEXTS[:2]), top_k=3)
    assert len(batch) == 2 and all(len(r) <= 3 for r in batch)
    assert all(r[i][1] >= r[i + 1][1] for r in batch for i in range(len(r) - 1))
    with pytest.raises(ValueError, match="not supported by SparseEncoder"):
        pipe.encode(TEXTS, normalize_embeddings=True)


class Router(InputModule):
    """A fake router (named Router: receives all kwargs) that records the modality of each call."""

    forward_kwargs = {"task", "modality"}

    def __init__(self) -> None:
        super().__init__()
        self.toy = Toy()
        self.pre: list = []
        self.fwd: list = []

    @property
    def modalities(self):
        return ["text", "image", ("image", "text")]

    def preprocess(self, inputs, prompt=None, task=None, modality=None, **kwargs):
        self.pre.append((modality, task, len(inputs)))
        texts = [x if isinstance(x, str) else x.get("text", "b") for x in inputs]
        return self.toy.preprocess(texts, prompt=prompt)

    def forward(self, features, task=None, modality=None, **kwargs):
        self.fwd.append((modality, task))
        return Mean()(self.toy(features))

    def save(self, output_path, *args, safe_serialization=True, **kwargs):
        pass


def test_mixed_modalities_are_split_and_reassembled():
    router = Router()
    pipe = Pipeline([router], device="cpu")
    inputs = ["the cat", {"text": "dog", "image": None}, "ran far away", {"image": None, "text": "a b"}]
    out = pipe.encode(inputs, task="query")
    texts = ["the cat", "dog", "ran far away", "a b"]
    np.testing.assert_allclose(out, np.stack([expected(router.toy, t) for t in texts]), atol=1e-6)
    assert sorted(router.pre, key=str) == sorted([("text", "query", 2), (("image", "text"), "query", 2)], key=str)
    assert ("text", "query") in router.fwd and (("image", "text"), "query") in router.fwd
    router.pre.clear()
    pairs = [{"text": "x", "image": None}, {"image": None, "text": "y"}]
    for given in (["text", "image"], "text+image", ("image", "text")):  # passed through normalised, no split
        pipe.encode(pairs, modality=given)
    assert router.pre == [(("image", "text"), None, 2)] * 3


def test_explicit_modality_is_checked_before_the_model_runs(tmp_path):
    router = Router()
    pipe = Pipeline([router], device="cpu")
    for bad in (5, "imag", "text+text", ["message", "text"], [], {"text"}):
        with pytest.raises(ValueError, match="is not a valid modality"):
            pipe.encode(["x"], modality=bad)
    with pytest.raises(ValueError, match=r"^modality='image' was given, but the inputs are text; pass "
                                         r"modality='text', or leave"):
        pipe.encode(["x", "y"], modality="image")
    with pytest.raises(ValueError, match=r"^Modality 'audio' is not supported by this SentenceTransformer model"):
        pipe.encode(["x"], modality="audio")
    with pytest.raises(ValueError, match=r"^This batch mixes multiple modalities \(image\+text, text\), which"):
        pipe.encode(["x", {"text": "y", "image": None}], modality="text", batch_size=1)  # checked for the whole call
    assert router.pre == []  # nothing ran
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")  # an image file's path is an image
    pipe.encode([str(tmp_path / "a.png")], modality=["image"])
    assert router.pre == [("image", None, 1)]


def test_old_style_task_dicts_give_the_task_of_the_whole_call():
    router = Router()
    pipe = Pipeline([router], device="cpu")
    out = pipe.encode([{"query": "the cat"}, {"query": "dog ran far"}], batch_size=1)
    np.testing.assert_allclose(out, np.stack([expected(router.toy, t) for t in ["the cat", "dog ran far"]]),
                               atol=1e-6)
    assert [task for _, task, _ in router.pre] == ["query", "query"]
    for mixed in ([{"query": "the cat"}, "dog"], ["dog", {"query": "the cat"}]):
        with pytest.raises(ValueError, match="^You cannot mix dictionaries with task types as keys"):
            pipe.encode(mixed, batch_size=1)


def test_input_helpers():
    assert is_single_input("x") and is_single_input({"text": "x"})
    assert is_single_input([{"role": "user", "content": "hi"}])  # a conversation
    assert not is_single_input(["x"]) and not is_single_input(("x", "y"))
    assert input_length("abcd") == 4 and input_length(("ab", "c")) == 3
    assert input_length({"text": "abc", "image": np.zeros((2, 3))}) == 9
    assert input_length(torch.zeros(2, 5)) == 10


# ============================================================================ parity with sentence-transformers
SENTS = ["The cat sits on the mat.", "A dog runs in the park", "what is the weather in paris now?", "good",
         "red blue green fast slow", "the man eats food at night", "Where is the capital of France?",
         "sunny day", "images of cats and dogs", "a", "book music movie read write"]


@pytest.fixture(scope="module")
def pair(tiny_bert_dir):
    """A stpipe pipeline built from a dict and a SentenceTransformer with the same tiny-BERT/Dense weights."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer

    from stpipe.builder import build

    torch.manual_seed(0)
    pipe = build({"prompts": {"query": "query: ", "passage": "passage: "},
                  "modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir), "max_seq_length": 40},
                              {"type": "Pooling", "pooling_mode": "mean"},
                              {"type": "Dense", "in_features": 32, "out_features": 24}]}, device="cpu")
    dense = Dense(32, 24)
    dense.load_state_dict(pipe[2].state_dict())
    st = SentenceTransformer(modules=[Transformer(str(tiny_bert_dir), max_seq_length=40), Pooling(32, "mean"), dense],
                             prompts={"query": "query: ", "passage": "passage: "}, device="cpu")
    return pipe, st


@pytest.mark.parametrize("kwargs", [
    {}, {"prompt_name": "query"}, {"prompt": "find: "}, {"normalize_embeddings": True}, {"truncate_dim": 10},
    {"truncate_dim": 10, "normalize_embeddings": True}, {"batch_size": 3}, {"batch_size": 1, "prompt_name": "passage"},
    {"convert_to_tensor": True}, {"convert_to_numpy": False},
], ids=str)
def test_encode_parity(pair, kwargs):
    pipe, st = pair
    ours, theirs = pipe.encode(SENTS, **kwargs), st.encode(SENTS, **kwargs)
    assert type(ours) is type(theirs)
    if isinstance(ours, list):
        ours, theirs = torch.stack(ours), torch.stack(theirs)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-5)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_precision_parity(pair, precision):
    pipe, st = pair
    ours, theirs = pipe.encode(SENTS, precision=precision), st.encode(SENTS, precision=precision)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_single_input_and_query_document_parity(pair):
    pipe, st = pair
    np.testing.assert_allclose(pipe.encode(SENTS[2]), st.encode(SENTS[2]), atol=1e-5)
    np.testing.assert_allclose(pipe.encode_query(SENTS), st.encode_query(SENTS), atol=1e-5)
    np.testing.assert_allclose(pipe.encode_document(SENTS), st.encode_document(SENTS), atol=1e-5)  # "passage"
    assert pipe.get_embedding_dimension() == st.get_embedding_dimension() == 24
    assert pipe.max_seq_length == st.max_seq_length == 40


def test_output_value_parity(pair):
    pipe, st = pair
    ours = pipe.encode(SENTS, output_value="token_embeddings")
    theirs = st.encode(SENTS, output_value="token_embeddings")
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    ours, theirs = pipe.encode(SENTS[:4], output_value=None), st.encode(SENTS[:4], output_value=None)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a["sentence_embedding"], b["sentence_embedding"], atol=1e-5, rtol=0)
        torch.testing.assert_close(a["attention_mask"], b["attention_mask"])


@pytest.mark.parametrize("fn", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_parity(pair, fn):
    pipe, st = pair
    a, b = st.encode(SENTS[:5]), st.encode(SENTS[5:])
    pipe.similarity_fn_name = st.similarity_fn_name = fn
    torch.testing.assert_close(pipe.similarity(a, b), st.similarity(a, b), atol=1e-5, rtol=0)
    torch.testing.assert_close(pipe.similarity_pairwise(a, b[:5]), st.similarity_pairwise(a, b[:5]), atol=1e-5,
                               rtol=0)
    pipe.similarity_fn_name = st.similarity_fn_name = "cosine"


@pytest.fixture(scope="module")
def minilm_transformers(minilm_dir):
    from sentence_transformers import SentenceTransformer

    from stpipe.builder import load

    return load(minilm_dir, device="cpu")[0], SentenceTransformer(str(minilm_dir), device="cpu")[0]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken",
                                  ["cls", "mean", "max"]], ids=str)
def test_minilm_pooling_modes(minilm_transformers, sts_sentences, mode):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling as STPooling

    from stpipe.modules.pooling import Pooling

    ours, theirs = minilm_transformers
    pipe = Pipeline([ours, Pooling(384, mode)], device="cpu")
    st = SentenceTransformer(modules=[theirs, STPooling(384, mode)], device="cpu")
    sents = sts_sentences[:24]
    np.testing.assert_allclose(pipe.encode(sents, prompt="query: "), st.encode(sents, prompt="query: "), atol=1e-5)


@pytest.mark.slow
def test_minilm_dense_head_and_prompt_exclusion(minilm_transformers, sts_sentences):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense as STDense
    from sentence_transformers.sentence_transformer.modules import Normalize as STNormalize
    from sentence_transformers.sentence_transformer.modules import Pooling as STPooling

    from stpipe.modules.dense import Dense
    from stpipe.modules.normalize import Normalize
    from stpipe.modules.pooling import Pooling

    ours, theirs = minilm_transformers
    torch.manual_seed(3)
    dense = Dense(384, 128)
    st_dense = STDense(384, 128)
    st_dense.load_state_dict(dense.state_dict())
    pipe = Pipeline([ours, Pooling(384, "mean", include_prompt=False), dense, Normalize()], device="cpu")
    st = SentenceTransformer(modules=[theirs, STPooling(384, "mean", include_prompt=False), st_dense, STNormalize()],
                             device="cpu")
    sents = sts_sentences[:32]
    np.testing.assert_allclose(pipe.encode(sents, prompt="query: "), st.encode(sents, prompt="query: "), atol=1e-5)
