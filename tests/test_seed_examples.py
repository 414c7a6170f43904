"""The seed's four Router examples as YAML model definitions (``conf/model/{asymmetric,sparse,multimodal,
hybrid}.yaml``), checked against sentence-transformers 6.2 (the oracle) with the same stand-in modules and weights.

For each example the oracle model is built *independently*, in Python, the way the seed builds it (``Router(...)``,
``Router.for_query_document(...)`` from the stand-in folders of ``examples/make_standins.py``), and:

* stpipe's pipeline built from the YAML gives the same embeddings (max abs diff <= 1e-5; for a SparseEncoder the
  same non-zero indices and values) for encode_query, encode_document, plain encode, and, where the example takes
  them, images and text+image inputs;
* saved by stpipe, the model loads in ``SentenceTransformer(dir)`` / ``SparseEncoder(dir)`` and agrees, and every
  JSON file written equals the one sentence-transformers writes for its own model;
* saved by sentence-transformers, the model loads with ``stpipe.load`` and agrees, and ``stpipe import`` gives a
  YAML definition that builds into the same model again;
* the projection the hybrid example shares between two routes is one instance after every round trip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import stpipe

pytestmark = pytest.mark.slow  # each test builds real models and compares with sentence-transformers

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = ("asymmetric", "sparse", "multimodal", "hybrid")
TEXTS = ["What's the weather in ny now?", "Currently New York is rainy.", "A man is playing a guitar.",
         "Paris is the capital of France.", "cats"]
CLIP_CONFIG = {"text": {"method": "get_text_features", "method_output_name": "pooler_output"},
               "image": {"method": "get_image_features", "method_output_name": "pooler_output"},
               ("image", "text"): {"method": "forward", "method_output_name": "image_embeds"}}


def picture(seed: int, size: tuple[int, int] = (40, 40)) -> Image.Image:
    rng = np.random.RandomState(seed)
    return Image.fromarray((rng.rand(size[1], size[0], 3) * 255).astype("uint8"))


IMAGES = [picture(0), picture(1, (48, 36)), picture(2, (30, 52))]
PAIRS = [{"text": "a photo of a cat", "image": IMAGES[0]}, {"text": "two dogs play in the park", "image": IMAGES[1]}]


def calls(name: str) -> list[tuple[str, Any]]:
    """(encode method, inputs) pairs each example is checked on."""
    out = [("encode_query", TEXTS), ("encode_document", TEXTS), ("encode", TEXTS), ("encode_query", TEXTS[0])]
    if name in ("multimodal", "hybrid"):
        out += [("encode", IMAGES), ("encode", PAIRS), ("encode", IMAGES[2]), ("encode", PAIRS[1]),
                ("encode_query", IMAGES), ("encode_document", PAIRS)]
    return out


def assert_same(ours: Any, ref: Any) -> None:
    """Dense: max abs diff <= 1e-5. Sparse: the same non-zero indices, values within 1e-5."""
    if isinstance(ref, torch.Tensor) and ref.is_sparse:
        assert isinstance(ours, torch.Tensor) and ours.is_sparse and ours.shape == ref.shape
        a, b = ours.coalesce(), ref.coalesce()
        assert torch.equal(a.indices(), b.indices())
        assert a.values().numel() > 0 and (a.values() - b.values()).abs().max() <= 1e-5
        return
    a, b = np.asarray(ours), np.asarray(ref)
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    assert np.abs(a - b).max() <= 1e-5


def assert_same_model(ours: Any, ref: Any, name: str) -> None:
    for method, inputs in calls(name):
        assert_same(getattr(ours, method)(inputs), getattr(ref, method)(inputs))


# ------------------------------------------------------------------------------------------------ the oracle models
def oracle(name: str, store: dict[str, Path], minilm: Path) -> Any:
    """The seed's code, with the stand-ins: sentence-transformers modules built in Python."""
    from sentence_transformers import SentenceTransformer, SparseEncoder
    from sentence_transformers.sentence_transformer.modules import (
        Dense,
        Normalize,
        Pooling,
        Router,
        StaticEmbedding,
        Transformer,
    )
    from sentence_transformers.sparse_encoder import modules as sparse

    if name == "asymmetric":
        document_embedder = SentenceTransformer(str(minilm), device="cpu")
        router = Router.for_query_document(query_modules=[StaticEmbedding.load(str(store["minilm-static"]))],
                                           document_modules=list(document_embedder.children()))
        return SentenceTransformer(modules=[router, Normalize()], device="cpu")
    if name == "sparse":
        mlm = str(store["minilm-mlm"])
        doc_encoder = sparse.Transformer(mlm, transformer_task="fill-mask")
        router = sparse.Router.for_query_document(
            query_modules=[sparse.SparseStaticEmbedding.from_json(f"{mlm}/idf.json", tokenizer=doc_encoder.tokenizer,
                                                                  frozen=True)],
            document_modules=[doc_encoder, sparse.SpladePooling(pooling_strategy="max",
                                                                activation_function="log1p_relu")])
        return SparseEncoder(modules=[router], similarity_fn_name="dot", device="cpu")
    image_encoder = Transformer(str(store["tiny-clip"]), modality_config=CLIP_CONFIG,
                                module_output_name="sentence_embedding")
    projection = Dense.load(str(store["minilm-to-clip"]))
    text = [Transformer(str(minilm), max_seq_length=256), Pooling(384, "mean")]
    if name == "multimodal":
        router = Router(sub_modules={"text": [*text, projection], "image": [image_encoder]},
                        route_mappings={(None, "text"): "text", (None, ("text", "image")): "image",
                                        (None, "image"): "image"})
    else:
        router = Router(sub_modules={"query_text": [StaticEmbedding.load(str(store["minilm-static"])), projection],
                                     "doc_text": [*text, projection], "image": [image_encoder]},
                        route_mappings={("query", "text"): "query_text", ("document", "text"): "doc_text",
                                        (None, ("text", "image")): "image", (None, "image"): "image"})
    return SentenceTransformer(modules=[router], device="cpu")


def st_load(path: Path, model_type: str) -> Any:
    from sentence_transformers import SentenceTransformer, SparseEncoder

    cls = SparseEncoder if model_type == "SparseEncoder" else SentenceTransformer
    return cls(str(path), device="cpu")


class Models:
    """Lazily built, cached per example: stpipe from YAML, the oracle, and their saved directories."""

    def __init__(self, store: dict[str, Path], minilm: Path, tmp: Path) -> None:
        self.store, self.minilm, self.tmp, self.cache = store, minilm, tmp, {}

    def _get(self, key: tuple[str, str], make) -> Any:
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def ours(self, name: str) -> Any:
        return self._get(("ours", name), lambda: stpipe.build(REPO / "conf" / "model" / f"{name}.yaml", device="cpu"))

    def oracle(self, name: str) -> Any:
        return self._get(("oracle", name), lambda: oracle(name, self.store, self.minilm))

    def saved_by_us(self, name: str) -> Path:
        def save() -> Path:
            self.ours(name).save(self.tmp / f"stpipe-{name}")
            return self.tmp / f"stpipe-{name}"
        return self._get(("saved_by_us", name), save)

    def saved_by_st(self, name: str) -> Path:
        def save() -> Path:
            self.oracle(name).save(str(self.tmp / f"st-{name}"))
            return self.tmp / f"st-{name}"
        return self._get(("saved_by_st", name), save)


@pytest.fixture(scope="module")
def models(standins, minilm_dir, tmp_path_factory) -> Models:
    return Models(standins, minilm_dir, tmp_path_factory.mktemp("seed-examples"))


# ------------------------------------------------------------------------------------------------ the YAML files
@pytest.mark.parametrize("name", EXAMPLES)
def test_yaml_names_models_by_name_only(standins, name):
    text = (REPO / "conf" / "model" / f"{name}.yaml").read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=../../schemas/pipeline.schema.json"
    assert f"Seed example {EXAMPLES.index(name) + 1}" in text and "Stand-in" in text
    import yaml

    refs = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k in ("model_name_or_path", "load_from", "tokenizer", "path"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    definition = yaml.safe_load(text)
    stpipe.validate(definition)  # the names resolve in the model store (STPIPE_MODELS) and validate
    walk(definition)
    assert refs and all(isinstance(r, str) and "/" not in r and "\\" not in r for r in refs), refs


# ------------------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("name", EXAMPLES)
def test_yaml_model_matches_the_seed_built_with_sentence_transformers(models, name):
    ours, ref = models.ours(name), models.oracle(name)
    assert ours.model_type == type(ref).__name__ and ours.similarity_fn_name == ref.similarity_fn_name
    assert_same_model(ours, ref, name)
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension()
    assert [str(m) for m in ours.modalities] == [str(m) for m in ref.modalities]


@pytest.mark.parametrize("name", EXAMPLES)
def test_saved_by_stpipe_loads_in_sentence_transformers(models, name):
    saved = models.saved_by_us(name)
    assert_same_model(st_load(saved, models.ours(name).model_type), models.ours(name), name)
    # every file sentence-transformers writes for the same modules, and the same JSON content
    theirs = models.saved_by_st(name)
    files = sorted(str(p.relative_to(theirs)) for p in theirs.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(saved)) for p in saved.rglob("*") if p.is_file())
    for f in (f for f in files if f.endswith(".json")):
        assert json.loads((saved / f).read_text()) == json.loads((theirs / f).read_text()), f


@pytest.mark.parametrize("name", EXAMPLES)
def test_saved_by_sentence_transformers_loads_and_imports(models, name, capsys, tmp_path):
    from stpipe.cli import main

    ref, theirs = models.oracle(name), models.saved_by_st(name)
    loaded = stpipe.load(theirs, device="cpu")
    assert_same_model(loaded, ref, name)
    capsys.readouterr()
    assert main(["import", str(theirs)]) == 0
    imported = tmp_path / f"{name}.yaml"
    imported.write_text(capsys.readouterr().out)
    rebuilt = stpipe.build(imported, device="cpu")
    assert_same_model(rebuilt, ref, name)
    assert rebuilt.model_type == ref.__class__.__name__ and rebuilt.similarity_fn_name == ref.similarity_fn_name


def test_the_shared_projection_stays_shared(models, capsys, tmp_path):
    from stpipe.cli import main

    def shared(model: Any) -> bool:
        routes = model[0].sub_modules
        return routes["query_text"][1] is routes["doc_text"][2]

    assert shared(models.ours("hybrid")) and shared(models.oracle("hybrid"))
    ours_dir, st_dir = models.saved_by_us("hybrid"), models.saved_by_st("hybrid")
    structure = json.loads((ours_dir / "router_config.json").read_text())["structure"]
    assert structure["doc_text"][2] == structure["query_text"][1] == "query_text_1_Dense"
    assert not (ours_dir / "doc_text_2_Dense").exists()
    assert shared(stpipe.load(ours_dir, device="cpu"))
    assert shared(st_load(ours_dir, "SentenceTransformer"))
    assert shared(stpipe.load(st_dir, device="cpu"))
    capsys.readouterr()
    assert main(["import", str(st_dir)]) == 0
    (tmp_path / "hybrid.yaml").write_text(capsys.readouterr().out)
    assert shared(stpipe.build(tmp_path / "hybrid.yaml", device="cpu"))


def test_sparse_decode_matches_sentence_transformers(models):
    ours, ref = models.ours("sparse"), models.oracle("sparse")
    for emb_ours, emb_ref in ((ours.encode_query(TEXTS[0]), ref.encode_query(TEXTS[0])),
                              (ours.encode_document(TEXTS[:2]), ref.encode_document(TEXTS[:2]))):
        assert ours.decode(emb_ours, top_k=10) == ref.decode(emb_ref, top_k=10)
        assert ours.decode(emb_ours) == ref.decode(emb_ref)
    query = ours.encode_query(TEXTS[0]).coalesce()  # an ordinary tensor, as sentence-transformers returns
    assert query.values().numel() == len(ours.tokenizer.tokenize(TEXTS[0]))


# ------------------------------------------------------------------------------------------ inputs CLIP cannot fuse
def test_text_image_dict_on_a_plain_clip_is_refused_like_sentence_transformers(models):
    """Without the "image+text" modality_config entry, a CLIP Transformer cannot take {"text", "image"} inputs;
    stpipe refuses them with sentence-transformers' words, for the Transformer alone and inside the Router."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Router, Transformer

    clip = str(models.store["tiny-clip"])
    ours_plain = stpipe.build({"modules": [{"type": "Transformer", "model_name_or_path": "tiny-clip"}]}, device="cpu")
    ref_plain = SentenceTransformer(modules=[Transformer(clip)], device="cpu")
    drop = ["~modules.0.sub_modules.image.0.modality_config", "~modules.0.sub_modules.image.0.module_output_name"]
    ours_router = stpipe.build(REPO / "conf" / "model" / "multimodal.yaml", overrides=drop, device="cpu")
    text = [Transformer(str(models.minilm)), *models.oracle("multimodal")[0].sub_modules["text"][1:]]
    ref_router = SentenceTransformer(modules=[Router({"text": text, "image": [Transformer(clip)]}, route_mappings={
        (None, "text"): "text", (None, ("text", "image")): "image"})], device="cpu")
    for ours, ref in ((ours_plain, ref_plain), (ours_router, ref_router)):
        with pytest.raises(ValueError) as got:
            ours.encode(PAIRS[0])
        with pytest.raises(ValueError) as expected:
            ref.encode(PAIRS[0])
        assert str(got.value) == str(expected.value)
        assert "supports image and text individually" in str(got.value)
        assert_same(ours.encode(IMAGES), ref.encode(IMAGES))


def test_image_on_the_text_only_example_is_refused_like_sentence_transformers(models):
    with pytest.raises(ValueError) as got:
        models.ours("asymmetric").encode(IMAGES[0])
    with pytest.raises(ValueError) as expected:
        models.oracle("asymmetric").encode(IMAGES[0])
    assert str(got.value) == str(expected.value)


def test_mixed_modality_batch_is_split_by_modality(models):
    """stpipe extension: one call mixing texts, images and text+image inputs runs each modality through its route
    (sentence-transformers refuses such a batch); every row equals the oracle's per-modality result."""
    ours, ref = models.ours("multimodal"), models.oracle("multimodal")
    mixed = [TEXTS[0], IMAGES[0], PAIRS[0], TEXTS[1], IMAGES[1]]
    with pytest.raises(ValueError, match="mixes multiple modalities"):
        ref.encode(mixed)
    expected = np.stack([ref.encode(x) for x in mixed])
    assert_same(ours.encode(mixed), expected)


# ------------------------------------------------------------------------------------------ explicit modality=
def test_explicit_modality_on_a_mixed_batch_is_refused_like_sentence_transformers(models):
    """With modality= given there is no split by modality: a mixed batch gets sentence-transformers' message, for
    the whole call (whatever the batch size) and from ``preprocess``."""
    ours, ref = models.ours("multimodal"), models.oracle("multimodal")
    mixed = [TEXTS[0], IMAGES[0], PAIRS[0]]
    with pytest.raises(ValueError) as expected:
        ref.encode(mixed, modality="image")
    assert str(expected.value).startswith("This batch mixes multiple modalities (image, image+text, text), which "
                                          "this SentenceTransformer model cannot encode in a single batch.")
    for batch_size in (32, 1):
        with pytest.raises(ValueError) as got:
            ours.encode(mixed, modality="image", batch_size=batch_size)
        assert str(got.value) == str(expected.value)
    with pytest.raises(ValueError) as got:
        ours.preprocess(mixed)
    with pytest.raises(ValueError) as expected:
        ref.preprocess(mixed)
    assert str(got.value) == str(expected.value)


def test_bad_explicit_modality_is_a_clear_value_error(models):
    """sentence-transformers lets the model crash (TypeError, KeyError); stpipe checks modality= first."""
    ours, ref = models.ours("multimodal"), models.oracle("multimodal")
    with pytest.raises(TypeError):
        ref.encode(TEXTS, modality="image")  # CLIP's get_image_features gets no pixel_values
    with pytest.raises(ValueError, match=r"^modality='image' was given, but the inputs are text; pass "
                                         r"modality='text', or leave modality unset to infer it from the inputs"):
        ours.encode(TEXTS, modality="image")
    with pytest.raises(ValueError, match=r"^modality='image\+text' was given, but the inputs are image;"):
        ours.encode(IMAGES, modality=["text", "image"])
    with pytest.raises(KeyError):
        ref.encode(TEXTS, modality="audio")
    with pytest.raises(ValueError, match=r"^Modality 'audio' is not supported by this SentenceTransformer model. "
                                         r"Supported modalities: image\+text, image, text.$"):
        ours.encode(TEXTS, modality="audio")
    for bad in (5, "imag", ["text", 5], "text+smell"):
        with pytest.raises(ValueError, match="is not a valid modality"):
            ours.encode(TEXTS, modality=bad)


def test_explicit_modality_forms_are_equivalent(models):
    """modality= ["text"] ≡ "text" and "image+text" ≡ ("image", "text"), in encode and in the Router's mappings."""
    ours, ref = models.ours("multimodal"), models.oracle("multimodal")
    for given in (["text"], ("text",), "text"):
        assert_same(ours.encode(TEXTS, modality=given), ref.encode(TEXTS, modality="text"))
    for given in ("image+text", "text+image", ["text", "image"]):
        assert_same(ours.encode(PAIRS, modality=given), ref.encode(PAIRS, modality=("image", "text")))
    # the same mappings written as a one-element list and an 'a+b' string route as the tuple forms
    edits = ["modules.0.route_mappings.0.modality=[text]", "modules.0.route_mappings.1.modality=image+text"]
    alias = stpipe.build(REPO / "conf" / "model" / "multimodal.yaml", overrides=edits, device="cpu")
    assert alias[0].route_mappings == ours[0].route_mappings
    assert_same_model(alias, ref, "multimodal")


# ------------------------------------------------------------------------------------------ text pairs
@pytest.mark.parametrize("name", ["asymmetric", "sparse"])
def test_text_pairs_match_sentence_transformers(models, name):
    """StaticEmbedding / SparseStaticEmbedding (query routes) and the Transformer (document routes) take text pairs,
    tuples or two-element lists, alone or mixed with single texts, as sentence-transformers does."""
    ours, ref = models.ours(name), models.oracle(name)
    batches = [[("a cat sits", "on the mat")], [["a cat sits", "on the mat"]], [("a cat sits", "on the mat"), "dog"],
               ("a cat sits", "on the mat"), [(TEXTS[0], TEXTS[1]), TEXTS[2], (TEXTS[3], TEXTS[4])]]
    for inputs in batches:
        for method in ("encode_query", "encode_document", "encode"):
            assert_same(getattr(ours, method)(inputs), getattr(ref, method)(inputs))
    pairs = [("a cat sits", "on the mat"), "dog"]  # a prompt goes before a pair's first text
    assert_same(ours.encode_query(pairs, prompt="q: "), ref.encode_query(pairs, prompt="q: "))


# ------------------------------------------------------------------------------------------ old-style task dicts
@pytest.mark.parametrize("name", ["asymmetric", "hybrid"])
def test_task_dicts_mixed_with_plain_inputs_are_refused(models, name):
    ours, ref = models.ours(name), models.oracle(name)
    legacy = [{"query": t} for t in TEXTS]
    assert_same(ours.encode(legacy), ref.encode(legacy))  # all old-style dicts: the task for every input
    for mixed in ([{"query": TEXTS[0]}, TEXTS[1]], [TEXTS[1], {"query": TEXTS[0]}]):
        with pytest.raises(Exception):  # noqa: B017  (it fails deep inside, with a TypeError or AttributeError)
            ref.encode(mixed)
        for batch_size in (32, 1):
            with pytest.raises(ValueError, match=r"^You cannot mix dictionaries with task types as keys"):
                ours.encode(mixed, batch_size=batch_size)
    with pytest.raises(ValueError) as got:
        ours.encode([{"query": TEXTS[0]}, {"document": TEXTS[1]}])
    with pytest.raises(ValueError) as expected:
        ref.encode([{"query": TEXTS[0]}, {"document": TEXTS[1]}])
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("name", ["multimodal", "hybrid"])
def test_image_file_paths_route_like_images_as_in_sentence_transformers(models, name, tmp_path):
    """A string naming an existing image file is an image for a model that takes images (sentence-transformers'
    inference): it goes down the image route, alone and in a batch mixed with texts."""
    paths = []
    for i, img in enumerate(IMAGES):
        paths.append(str(tmp_path / f"img{i}.png"))
        img.save(paths[-1])
    ours, ref = models.ours(name), models.oracle(name)
    for call, inputs in [("encode", paths), ("encode", paths[0]), ("encode_document", paths[1:])]:
        expected = getattr(ref, call)(inputs, convert_to_tensor=True)
        got = getattr(ours, call)(inputs, convert_to_tensor=True)
        assert (got - expected).abs().max().item() <= 1e-5
    mixed = [TEXTS[0], paths[0], TEXTS[1], paths[2]]  # ST refuses a mixed batch; compare item by item
    expected = torch.stack([ref.encode(x, convert_to_tensor=True) for x in mixed])
    got = ours.encode(mixed, convert_to_tensor=True)
    assert (got - expected).abs().max().item() <= 1e-5
    as_pil = ours.encode([IMAGES[0], IMAGES[2]], convert_to_tensor=True)
    assert (got[[1, 3]] - as_pil).abs().max().item() <= 1e-5
