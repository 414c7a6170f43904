"""Transformer's saved config and settings as sentence-transformers 6.2 reads them (transformer_config.py):
``load_config`` agrees with ``load``; ``max_seq_length`` without a tokenizer is ignored; ``tokenizer_name_or_path``
is deprecated (at build time and in ``stpipe validate``)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import write_tiny_bert
from sentence_transformers.base.modules import Transformer as STTransformer

from stpipe.modules.transformer import Transformer


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    """A tiny ViT with an image processor and no tokenizer."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    path = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32)).save_pretrained(path)
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(path)
    return path


def _saved(src, dst, sbert):
    shutil.copytree(src, dst)
    (dst / "sentence_bert_config.json").write_text(json.dumps(sbert))
    return dst


@pytest.mark.parametrize("sbert", [
    {"transformer_task": "feature-extraction",
     "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"},
                         "image+text": {"method": "forward", "method_output_name": "last_hidden_state"}},
     "module_output_name": "token_embeddings"},
    {"max_seq_length": 12, "do_lower_case": False},  # a pre-6 save: no modality_config
    {"transformer_task": "fill-mask"},  # pre-6, another task
], ids=["joint-key", "pre6", "pre6-fill-mask"])
def test_load_config_agrees_with_load_and_the_oracle(bert, tmp_path, sbert):
    folder = _saved(bert, tmp_path / "m", sbert)
    ours, ref = Transformer.load_config(str(folder)), STTransformer.load_config(str(folder))
    assert ours["modality_config"] == ref["modality_config"]
    assert ours["module_output_name"] == ref["module_output_name"]
    if "image+text" in json.dumps(sbert):
        assert ("image", "text") in ours["modality_config"]
    if sbert.get("transformer_task") != "feature-extraction":  # what load builds from it is the same config
        loaded = Transformer.load(str(folder))
        assert loaded.modality_config == ours["modality_config"]
        assert loaded.module_output_name == ours["module_output_name"]


def test_load_config_reads_a_legacy_config_name(bert, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(bert, folder)
    (folder / "sentence_roberta_config.json").write_text(json.dumps({"transformer_task": "fill-mask"}))
    ours, ref = Transformer.load_config(str(folder)), STTransformer.load_config(str(folder))
    assert ours["transformer_task"] == ref["transformer_task"] == "fill-mask"
    assert ours["modality_config"] == ref["modality_config"]
    assert Transformer.load_config(str(bert)) == {}  # no config file: nothing saved


def test_max_seq_length_without_a_tokenizer_is_ignored(vit):
    ours, ref = Transformer(str(vit)), STTransformer(str(vit))
    before = ref.max_seq_length
    ours.max_seq_length = 10
    ref.max_seq_length = 10
    assert ours.max_seq_length == ref.max_seq_length == before
    assert not hasattr(ours.processor, "model_max_length")


def test_tokenizer_name_or_path_is_deprecated(bert, tmp_path):
    with pytest.warns(FutureWarning, match="`tokenizer_name_or_path` argument is deprecated"):
        ours = Transformer(str(bert), tokenizer_name_or_path=str(bert))
    ref = STTransformer(str(bert), tokenizer_name_or_path=str(bert))
    assert ours.config.tokenizer_class == ref.config.tokenizer_class


def test_validate_warns_about_tokenizer_name_or_path(bert):
    from stpipe.config.validate import inspect_definition

    report = inspect_definition({"modules": [
        {"type": "Transformer", "model_name_or_path": str(bert), "tokenizer_name_or_path": str(bert)},
        {"type": "Pooling"}]})
    deprecated = [p for p in report.problems if p.code == "check.deprecated"]
    assert [(p.severity, p.path_str) for p in deprecated] == [("warning", "modules[0].tokenizer_name_or_path")]
    assert "drop tokenizer_name_or_path" in deprecated[0].hint
