"""sentence-transformers 6.2 directories: round trips both ways with the oracle, to_definition → build,
the exact file layout, atomic save, and bad files (LoadError naming the file)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stpipe.builder import build, load
from stpipe.errors import LoadError
from stpipe.formats.st import to_definition

SENTS = ["The cat sits on the mat.", "A dog runs in the park", "what is the weather in paris now?", "good",
         "red blue green fast slow", "the man eats food at night", "Where is the capital of France?"]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_pipe(tiny_bert_dir):
    torch.manual_seed(0)
    return build({"name": "tiny", "similarity_fn_name": "dot", "prompts": {"query": "query: "},
                  "modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir), "max_seq_length": 48},
                              {"type": "Pooling", "pooling_mode": "mean"},
                              {"type": "Dense", "in_features": 32, "out_features": 16},
                              {"type": "Normalize"}]}, device="cpu")


@pytest.fixture(scope="module")
def saved_tiny(tiny_pipe, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("saved") / "tiny"
    tiny_pipe.save(out)
    return out


def test_saved_model_loads_in_sentence_transformers(tiny_pipe, saved_tiny):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(saved_tiny), device="cpu")
    for kw in ({}, {"prompt_name": "query"}, {"normalize_embeddings": True, "truncate_dim": 5}):
        np.testing.assert_allclose(tiny_pipe.encode(SENTS, **kw), st.encode(SENTS, **kw), atol=1e-5)
    assert (st.similarity_fn_name, st.prompts["query"], st.max_seq_length) == ("dot", "query: ", 48)


def test_layout_matches_a_sentence_transformers_resave(saved_tiny, tmp_path):
    from sentence_transformers import SentenceTransformer

    SentenceTransformer(str(saved_tiny), device="cpu").save(str(tmp_path / "st"))
    ours, theirs = files(saved_tiny), files(tmp_path / "st")
    assert sorted(ours) == sorted(theirs)
    for name in ["modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "2_Dense/config.json",
                 "3_Normalize/config.json", "tokenizer_config.json"]:
        assert json.loads(ours[name]) == json.loads(theirs[name]), name
    assert ours["modules.json"] == theirs["modules.json"]  # byte for byte (indent 2)
    cfg = json.loads(ours["config_sentence_transformers.json"])
    assert ours["config_sentence_transformers.json"].decode() == json.dumps(cfg, indent=2, sort_keys=True)
    assert cfg["__version__"]["sentence_transformers"] == "6.2.0" and "truncate_dim" not in cfg
    ref = json.loads(theirs["config_sentence_transformers.json"])
    assert {k: v for k, v in cfg.items() if k != "__version__"} == {k: v for k, v in ref.items() if k != "__version__"}
    assert ours["2_Dense/model.safetensors"] == theirs["2_Dense/model.safetensors"]


def test_sentence_transformers_save_loads_in_stpipe(tiny_bert_dir, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer

    torch.manual_seed(1)
    st = SentenceTransformer(modules=[Transformer(str(tiny_bert_dir)), Pooling(32, "cls"), Dense(32, 8), Normalize()],
                             device="cpu", prompts={"q": "search: "}, default_prompt_name="q",
                             similarity_fn_name="euclidean", truncate_dim=6)
    st.save(str(tmp_path / "st"))
    pipe = load(tmp_path / "st", device="cpu")
    assert pipe.prompts == st.prompts and pipe.default_prompt_name == "q"
    assert (pipe.similarity_fn_name, pipe.truncate_dim) == ("euclidean", 6)
    np.testing.assert_allclose(pipe.encode(SENTS), st.encode(SENTS), atol=1e-5)
    np.testing.assert_allclose(pipe.encode_query(SENTS), st.encode_query(SENTS), atol=1e-5)
    # explicit arguments win over the saved values, as in sentence-transformers
    kw = dict(prompts={"q": "find: "}, default_prompt_name="query", truncate_dim=4, similarity_fn_name="cosine")
    pipe2 = load(tmp_path / "st", device="cpu", **kw)
    st2 = SentenceTransformer(str(tmp_path / "st"), device="cpu", **kw)
    assert pipe2.prompts == st2.prompts and pipe2.similarity_fn_name == "cosine"
    np.testing.assert_allclose(pipe2.encode(SENTS), st2.encode(SENTS), atol=1e-5)
    np.testing.assert_allclose(pipe2.encode(SENTS, prompt_name="q"), st2.encode(SENTS, prompt_name="q"), atol=1e-5)


def test_module_kwargs_survive_a_round_trip(tiny_pipe, tmp_path):
    from sentence_transformers import SentenceTransformer

    from stpipe.pipeline import Pipeline

    Pipeline(list(tiny_pipe), device="cpu", module_kwargs={"2": ["scale"]}).save(tmp_path / "m")
    entries = json.loads((tmp_path / "m" / "modules.json").read_text())
    assert [e.get("kwargs") for e in entries] == [None, None, ["scale"], None]
    assert load(tmp_path / "m", device="cpu").get_model_kwargs() == ["scale"]
    assert SentenceTransformer(str(tmp_path / "m"), device="cpu").get_model_kwargs() == ["scale"]


def test_modules_follow_the_dtype_of_module_0(saved_tiny):
    pipe = load(saved_tiny, device="cpu", model_kwargs={"dtype": torch.float64})
    assert pipe[0].auto_model.dtype == torch.float64 and pipe[2].linear.weight.dtype == torch.float64
    assert pipe.encode(SENTS).dtype == np.float64


def test_plain_hf_directory_gets_transformer_and_mean_pooling(tiny_bert_dir):
    from sentence_transformers import SentenceTransformer

    pipe = load(tiny_bert_dir, device="cpu")
    assert [type(m).__name__ for m in pipe] == ["Transformer", "Pooling"] and pipe[1].pooling_mode == "mean"
    st = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    np.testing.assert_allclose(pipe.encode(SENTS), st.encode(SENTS), atol=1e-5)


@pytest.fixture(scope="module")
def minilm_st(minilm_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu")


@pytest.mark.slow
def test_minilm_load_parity(minilm_dir, minilm_st, sts_sentences):
    sents = sts_sentences[:200]
    pipe = load("all-MiniLM-L6-v2", device="cpu")  # the bundled model, by name
    assert pipe.max_seq_length == 256 == minilm_st.max_seq_length
    np.testing.assert_allclose(pipe.encode(sents), minilm_st.encode(sents), atol=1e-5)


@pytest.mark.slow
def test_minilm_to_definition_rebuilds_the_model(minilm_dir, minilm_st):
    definition = to_definition(minilm_dir)
    assert definition["modules"] == [
        {"type": "Transformer", "model_name_or_path": "all-MiniLM-L6-v2", "max_seq_length": 256},
        {"type": "Pooling", "embedding_dimension": 384, "pooling_mode": "mean", "include_prompt": True},
        {"type": "Normalize", "module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"},
    ]
    assert definition["similarity_fn_name"] == "cosine" and definition["prompts"] == {"query": "", "document": ""}
    pipe = build(definition, device="cpu")  # validated
    np.testing.assert_allclose(pipe.encode(SENTS), minilm_st.encode(SENTS), atol=1e-5)


def test_to_definition_of_a_saved_model_with_weights(saved_tiny, tiny_pipe, tmp_path):
    definition = to_definition(saved_tiny)
    dense = definition["modules"][2]
    assert dense["type"] == "Dense" and dense["load_from"] == str((saved_tiny / "2_Dense").resolve())
    assert definition["modules"][0]["max_seq_length"] == 48 and definition["similarity_fn_name"] == "dot"
    assert "load_from" not in definition["modules"][1]  # Pooling: its config says everything
    np.testing.assert_allclose(build(definition, device="cpu").encode(SENTS, prompt_name="query"),
                               tiny_pipe.encode(SENTS, prompt_name="query"), atol=1e-5)
    rel = to_definition(saved_tiny, relative_to=saved_tiny.parent)
    assert rel["modules"][2]["load_from"] == "tiny/2_Dense" and rel["modules"][0]["model_name_or_path"] == "tiny"
    np.testing.assert_allclose(build(rel, base_dir=saved_tiny.parent, device="cpu").encode(SENTS),
                               tiny_pipe.encode(SENTS), atol=1e-5)


def test_router_round_trip_with_a_shared_module(tiny_bert_dir, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Router, Transformer

    torch.manual_seed(2)
    shared = Transformer(str(tiny_bert_dir))
    router = Router({"query": [shared, Pooling(32, "mean")], "document": [shared, Pooling(32, "max"), Dense(32, 32)]},
                    default_route="document")
    st = SentenceTransformer(modules=[router], device="cpu")
    st.save(str(tmp_path / "st"))
    definition = to_definition(tmp_path / "st")
    node = definition["modules"][0]
    assert node["type"] == "Router" and node["default_route"] == "document"
    first, again = node["sub_modules"]["query"][0], node["sub_modules"]["document"][0]
    assert first["type"] == "Transformer" and first["id"] == again["ref"]
    for pipe in (build(definition, device="cpu"), load(tmp_path / "st", device="cpu")):
        r = pipe[0]
        assert r.sub_modules["query"][0] is r.sub_modules["document"][0]
        np.testing.assert_allclose(pipe.encode_query(SENTS), st.encode_query(SENTS), atol=1e-5)
        np.testing.assert_allclose(pipe.encode_document(SENTS), st.encode_document(SENTS), atol=1e-5)
    build(definition, device="cpu").save(tmp_path / "again")
    st2 = SentenceTransformer(str(tmp_path / "again"), device="cpu")
    np.testing.assert_allclose(st2.encode_query(SENTS), st.encode_query(SENTS), atol=1e-5)


def test_sparse_encoder_round_trip(tiny_mlm_dir, tmp_path):
    from sentence_transformers import SparseEncoder

    pipe = build({"model_type": "SparseEncoder", "modules": [
        {"type": "Transformer", "model_name_or_path": str(tiny_mlm_dir), "transformer_task": "fill-mask"},
        {"type": "SpladePooling", "pooling_strategy": "max"}]}, device="cpu")
    pipe.save(tmp_path / "sp")
    cfg = json.loads((tmp_path / "sp" / "config_sentence_transformers.json").read_text())
    assert cfg["model_type"] == "SparseEncoder" and cfg["similarity_fn_name"] == "dot"
    oracle = SparseEncoder(str(tmp_path / "sp"), device="cpu")
    ours, theirs = pipe.encode(SENTS), oracle.encode(SENTS)
    assert ours.is_sparse and ours.shape == theirs.shape
    torch.testing.assert_close(ours.to_dense(), theirs.to_dense(), atol=1e-5, rtol=0)
    mine, ref = pipe.decode(ours[0], top_k=5), oracle.decode(theirs[0], top_k=5)  # [(token, weight), ...]
    assert [t for t, _ in mine] == [t for t, _ in ref]
    assert [w for _, w in mine] == pytest.approx([w for _, w in ref])
    again = load(tmp_path / "sp", device="cpu")
    assert again.model_type == "SparseEncoder"
    torch.testing.assert_close(again.encode(SENTS).to_dense(), theirs.to_dense(), atol=1e-5, rtol=0)


def test_sparse_router_to_definition_round_trip(tiny_mlm_dir, tmp_path):
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import Router, SparseStaticEmbedding, SpladePooling, Transformer

    mlm = Transformer(str(tiny_mlm_dir), transformer_task="fill-mask")
    router = Router.for_query_document([SparseStaticEmbedding(tokenizer=mlm.tokenizer, frozen=True)],
                                       [mlm, SpladePooling("max")])
    oracle = SparseEncoder(modules=[router], similarity_fn_name="dot", device="cpu")
    oracle.save(str(tmp_path / "sp"))
    definition = to_definition(tmp_path / "sp")
    query = definition["modules"][0]["sub_modules"]["query"][0]
    folder = (tmp_path / "sp" / "query_0_SparseStaticEmbedding").resolve()
    assert query == {"type": "SparseStaticEmbedding", "load_from": str(folder), "frozen": True}
    pipe = build(definition, device="cpu")
    for method in ("encode_query", "encode_document"):
        torch.testing.assert_close(getattr(pipe, method)(SENTS).to_dense(), getattr(oracle, method)(SENTS).to_dense(),
                                   atol=1e-5, rtol=0)
    assert pipe.decode(pipe.encode_query(SENTS[:2])) == oracle.decode(oracle.encode_query(SENTS[:2]))


# --------------------------------------------------------------------------------------------- atomic save
def test_interrupted_save_leaves_the_old_model_intact(tiny_pipe, tmp_path, monkeypatch):
    target = tmp_path / "model"
    tiny_pipe.save(target)
    before = files(target)

    def broken_save(output_path, *args, **kwargs):
        Path(output_path, "config.json").write_text("{half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(tiny_pipe[2], "save", broken_save)
    with pytest.raises(LoadError, match="disk full") as e:
        tiny_pipe.save(target)
    assert str(target / "2_Dense") in str(e.value)
    assert files(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary directory left behind
    monkeypatch.undo()
    np.testing.assert_allclose(load(target, device="cpu").encode(SENTS), tiny_pipe.encode(SENTS), atol=1e-6)


def test_save_replaces_a_model_but_never_other_directories(tiny_pipe, tmp_path):
    target = tmp_path / "model"
    tiny_pipe.save(target)
    tiny_pipe.save(target)  # exactly a saved model: replaced
    assert (target / "modules.json").exists()
    (target / "stale.txt").write_text("a file the user added")
    with pytest.raises(LoadError, match="stale.txt"):  # never deleted (see tests/test_security_save.py)
        tiny_pipe.save(target)
    assert (target / "stale.txt").exists()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.txt").write_text("precious")
    with pytest.raises(LoadError, match="refusing to replace"):
        tiny_pipe.save(other)
    assert (other / "thesis.txt").read_text() == "precious"


# --------------------------------------------------------------------------------------------- bad files
def copy_model(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_malformed_modules_json(saved_tiny, tmp_path):
    m = copy_model(saved_tiny, tmp_path / "m")
    (m / "modules.json").write_text('[{"idx": 0, "path": "", ')
    with pytest.raises(LoadError, match=r"modules\.json.*malformed JSON"):
        load(m)
    (m / "modules.json").write_text('{"idx": 0}')
    with pytest.raises(LoadError, match=r"modules\.json.*list of modules"):
        load(m)
    (m / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "../x", "type": "Transformer"}]')
    with pytest.raises(LoadError, match=r"modules\.json.*unsafe module path '\.\./x'"):
        load(m)
    (m / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": "evil.Module"}]')
    with pytest.raises(LoadError, match=r"modules\.json.*custom code"):
        load(m)


def test_truncated_safetensors_are_named(saved_tiny, tmp_path):
    for rel in ["model.safetensors", "2_Dense/model.safetensors"]:
        m = copy_model(saved_tiny, tmp_path / rel.replace("/", "_"))
        data = (m / rel).read_bytes()
        (m / rel).write_bytes(data[: len(data) // 2])
        with pytest.raises(LoadError) as e:
            load(m)
        assert e.value.file == str(m / rel), str(e.value)


def test_pickle_weights_are_refused_by_default(tiny_pipe, tmp_path):
    tiny_pipe.save(tmp_path / "m", safe_serialization=False)
    pickle = tmp_path / "m" / "2_Dense" / "pytorch_model.bin"
    assert pickle.exists()
    with pytest.raises(LoadError, match="refusing to load pickle") as e:
        load(tmp_path / "m")
    assert e.value.file == str(pickle)
    np.testing.assert_allclose(load(tmp_path / "m", allow_pickle=True, device="cpu").encode(SENTS),
                               tiny_pipe.encode(SENTS), atol=1e-6)


def test_missing_directory_and_bad_model_config(saved_tiny, tmp_path):
    with pytest.raises(LoadError, match="model directory not found") as e:
        load(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value)
    with pytest.raises(LoadError, match="expected a model directory, found a file"):
        load(saved_tiny / "modules.json")
    m = copy_model(saved_tiny, tmp_path / "m")
    cfg_file = m / "config_sentence_transformers.json"
    cfg = json.loads(cfg_file.read_text())
    cfg_file.write_text(json.dumps({**cfg, "model_type": "MultiVectorEncoder"}))
    with pytest.raises(LoadError, match="model_type 'MultiVectorEncoder' is not supported"):
        load(m)
    cfg_file.write_text(json.dumps({**cfg, "requirements": {"torch": ">=99", "python": ">=3.0"}}))
    with pytest.raises(LoadError, match=r"requires torch>=99") as e:
        load(m)
    assert e.value.file == str(cfg_file)
    cfg_file.write_text(json.dumps({**cfg, "default_prompt_name": "missing"}))
    with pytest.raises(LoadError, match="Default prompt name 'missing' not found") as e:
        load(m)
    assert e.value.file == str(cfg_file)
