"""One loader (issue 7 item 3): ``stpipe.load(DIR)`` and the path of ``stpipe import`` / ``stpipe encode DIR``
(``compose`` → ``to_definition`` → validate → build) give the same modules and embeddings for every kind of saved
model, and a folder without ``modules.json`` gets sentence-transformers 6.2's default modules."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from stpipe.builder import build, load

SENTS = ["The cat sits on the mat.", "what is the weather in paris now?", "good", "red blue green fast slow"]


def write_tiny_causal_lm(path: Path, tokenizer_from: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    path.mkdir(parents=True)
    for f in tokenizer_from.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "special")):
            shutil.copy(f, path / f.name)
    torch.manual_seed(3)
    LlamaForCausalLM(LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
                     ).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def saved_models(tiny_bert_dir, tiny_mlm_dir, tiny_clip_dir, minilm_dir, tmp_path_factory) -> dict[str, Path]:
    """Every kind of saved model the formats tests use: stpipe saves, plain Hugging Face folders, the bundled one."""
    root = tmp_path_factory.mktemp("one-loader")
    torch.manual_seed(0)
    t = {"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)}
    build({"prompts": {"query": "q: "}, "modules": [t, {"type": "Pooling", "pooling_mode": "cls"},
                                                     {"type": "Dense", "in_features": 32, "out_features": 8},
                                                     {"type": "Normalize"}]}, device="cpu").save(root / "dense")
    build({"modules": [{"type": "Router", "sub_modules": {
        "query": [{**t, "id": "shared"}, {"type": "Pooling", "pooling_mode": "mean"}],
        "document": [{"ref": "shared"}, {"type": "Pooling", "pooling_mode": "max"}]}}]},
        device="cpu").save(root / "router")
    build({"model_type": "SparseEncoder", "modules": [
        {"type": "Transformer", "model_name_or_path": str(tiny_mlm_dir), "transformer_task": "fill-mask"},
        {"type": "SpladePooling", "pooling_strategy": "max"}]}, device="cpu").save(root / "sparse")
    plain_sparse = shutil.copytree(tiny_mlm_dir, root / "plain-sparse")
    (plain_sparse / "config_sentence_transformers.json").write_text('{"model_type": "SparseEncoder"}')
    return {"dense": root / "dense", "router": root / "router", "sparse": root / "sparse",
            "plain-bert": tiny_bert_dir, "plain-clip": tiny_clip_dir, "plain-sparse": plain_sparse,
            "plain-causal-lm": write_tiny_causal_lm(root / "causal", tiny_bert_dir), "minilm": minilm_dir}


def cli_path(directory: Path):
    """What `stpipe encode DIR` builds."""
    from stpipe.config.compose import compose
    from stpipe.config.validate import validate

    composed = compose(str(directory), [])
    definition = validate(composed.definition, sources=composed.sources, base_dir=composed.base_dir)
    return build(definition, validate=False, base_dir=composed.base_dir, device="cpu")


def signature(pipe) -> list[tuple[str, dict]]:
    out = []
    for module in pipe:
        config = module.get_config_dict()
        if type(module).__name__ == "Router":
            config = {r: [type(m).__name__ for m in ms] for r, ms in module.sub_modules.items()}
        out.append((type(module).__name__, config))
    return out


@pytest.mark.parametrize("kind", ["dense", "router", "sparse", "plain-bert", "plain-clip", "plain-sparse",
                                  "plain-causal-lm", "minilm"])
def test_load_and_the_cli_path_give_the_same_model(saved_models, kind):
    directory = saved_models[kind]
    loaded, built = load(directory, device="cpu"), cli_path(directory)
    assert signature(loaded) == signature(built)
    assert (loaded.model_type, loaded.prompts, loaded.similarity_fn_name) == \
        (built.model_type, built.prompts, built.similarity_fn_name)
    for task in ("query", "document"):
        a, b = loaded.encode(SENTS, task=task), built.encode(SENTS, task=task)
        a, b = (x.to_dense().numpy() if isinstance(x, torch.Tensor) else x for x in (a, b))
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(("kind", "modules"), [
    ("plain-bert", [("Transformer", None), ("Pooling", "mean")]),
    ("plain-causal-lm", [("Transformer", None), ("Pooling", "lasttoken")]),
    ("plain-clip", [("Transformer", None)]),
])
def test_a_folder_without_modules_json_gets_sentence_transformers_defaults(saved_models, kind, modules):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(saved_models[kind]), device="cpu")
    oracle = [(type(m).__name__, getattr(m, "pooling_mode", None)) for m in st]
    ours = load(saved_models[kind], device="cpu")
    assert [(type(m).__name__, getattr(m, "pooling_mode", None)) for m in ours] == oracle == modules
    if kind != "plain-clip":
        np.testing.assert_allclose(ours.encode(SENTS), st.encode(SENTS), atol=1e-5)


def test_a_plain_sparse_folder_gets_fill_mask_and_splade(saved_models):
    from sentence_transformers import SparseEncoder

    st = SparseEncoder(str(saved_models["plain-sparse"]), device="cpu")
    ours = load(saved_models["plain-sparse"], device="cpu")
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in st] == ["Transformer", "SpladePooling"]
    assert ours[0].transformer_task == "fill-mask"
    np.testing.assert_allclose(ours.encode(SENTS).to_dense().numpy(), st.encode(SENTS).to_dense().numpy(),
                               atol=1e-5)


def test_load_keyword_arguments_still_work(saved_models):
    pipe = load(saved_models["dense"], device="cpu", model_kwargs={"dtype": torch.float64},
                prompts={"document": "d: "}, similarity_fn_name="dot", truncate_dim=4, default_prompt_name="query")
    assert next(pipe[0].parameters()).dtype == torch.float64 and next(pipe[2].parameters()).dtype == torch.float64
    assert pipe.prompts["query"] == "q: " and pipe.prompts["document"] == "d: "
    assert (pipe.similarity_fn_name, pipe.truncate_dim, pipe.default_prompt_name) == ("dot", 4, "query")
    assert pipe.encode(SENTS).shape == (len(SENTS), 4)
