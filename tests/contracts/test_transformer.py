"""The Transformer's contract (:mod:`stpipe.contracts.transformer`): the dtype names are torch's, and the output
feature and its dimension follow from the task and the model's config.json as in sentence-transformers."""

from __future__ import annotations

from stpipe.contracts.transformer import DTYPE_NAMES, describe_output, dimension_from_config


def test_dtype_names_are_torch_dtypes():
    import torch

    from stpipe.modules.transformer_setup import DTYPES

    assert set(DTYPES) == set(DTYPE_NAMES)
    assert all(isinstance(getattr(torch, attr), torch.dtype) for attr in DTYPE_NAMES.values())


def test_the_dimension_comes_from_the_config_as_sentence_transformers_reads_it():
    assert dimension_from_config({"hidden_size": 384}, "token_embeddings") == 384
    assert dimension_from_config({"hidden_size": 768, "projection_dim": 512}, "sentence_embedding") == 512
    assert dimension_from_config({"text_config": {"hidden_size": 64}}, "token_embeddings") == 64
    assert dimension_from_config({"hidden_sizes": [32, 64, 128]}, "token_embeddings") == 128
    assert dimension_from_config({}, "token_embeddings") is None


def test_the_task_decides_the_output_feature():
    bert = {"model_type": "bert", "hidden_size": 32, "vocab_size": 100}
    assert describe_output({"model_name_or_path": "m"}, bert) == ("token_embeddings", 32)
    assert describe_output({"transformer_task": "fill-mask"}, bert) == ("token_embeddings", 100)
    assert describe_output({"transformer_task": "sequence-classification", "config_kwargs": {"num_labels": 3}},
                           bert) == ("scores", 3)
    assert describe_output({"transformer_task": "sequence-classification"}, None) == ("scores", 1)
    clip = {"model_type": "clip", "projection_dim": 512, "text_config": {"hidden_size": 64}}
    assert describe_output({}, clip) == ("sentence_embedding", 512)
