"""What validation reads from model folders: saved module configs and tensor shapes (never weights), limits."""

from __future__ import annotations

import json

import pytest

from stpipe import registry
from stpipe.contracts.positions import max_positions
from stpipe.formats.model_files import saved_params, tensor_shapes


def test_tensor_shapes_read_the_header_only(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"embedding.weight": torch.zeros(7, 12), "b": torch.zeros(3)}, str(tmp_path / "model.safetensors"))
    assert tensor_shapes(tmp_path) == {"embedding.weight": [7, 12], "b": [3]}
    assert tensor_shapes(tmp_path / "nowhere") == {}


@pytest.mark.parametrize("data", [b"", b"\x05\x00", b"\xff" * 8 + b"{}", (5).to_bytes(8, "little") + b"[1,2]",
                                  (2).to_bytes(8, "little") + b"{x"])
def test_tensor_shapes_refuse_what_is_not_safetensors(tmp_path, data):
    (tmp_path / "model.safetensors").write_bytes(data)
    with pytest.raises(ValueError, match="safetensors"):
        tensor_shapes(tmp_path)


def test_saved_dense_shapes_come_from_the_header_without_torch(tmp_path):
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "linear.weight": {"dtype": "F32", "shape": [3, 5], "data_offsets": [0, 60]}}).encode()
    (tmp_path / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(60))
    (tmp_path / "config.json").write_text(json.dumps({"bias": True}))
    saved = saved_params(registry.spec("Dense"), tmp_path)
    assert saved.params == {"bias": True, "in_features": 5, "out_features": 3}


def test_truncated_weights_are_reported_not_guessed(tmp_path):
    import torch
    from safetensors.torch import save_file

    from stpipe.config.graph import check_graph

    (tmp_path / "s").mkdir()
    save_file({"embedding.weight": torch.zeros(7, 12)}, str(tmp_path / "s" / "model.safetensors"))
    with open(tmp_path / "s" / "model.safetensors", "r+b") as fh:
        fh.truncate(100)
    out = check_graph({"modules": [{"type": "StaticEmbedding", "load_from": str(tmp_path / "s")}]})
    assert [(p.code, p.path_str) for p in out] == [("graph.load-from", "modules[0].load_from")]


def test_saved_pooling_config_with_legacy_keys(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"word_embedding_dimension": 48, "pooling_mode_cls_token": True,
                                                      "pooling_mode_mean_tokens": True}))
    saved = saved_params(registry.spec("Pooling"), tmp_path)
    assert saved.params == {"embedding_dimension": 48, "pooling_mode": ("cls", "mean")}
    assert saved.files == [str(tmp_path / "config.json")]


def test_saved_transformer_is_the_folder_itself(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "sentence_xlnet_config.json").write_text(json.dumps({"max_seq_length": 40}))
    saved = saved_params(registry.spec("Transformer"), tmp_path)
    assert saved.params == {"max_seq_length": 40, "model_name_or_path": str(tmp_path)}


@pytest.mark.parametrize("cfg, limit", [
    (None, None), ({}, None), ({"max_position_embeddings": 512}, 512),
    ({"model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1}, 512),
    ({"model_type": "deberta-v2", "max_position_embeddings": 512, "position_biased_input": False}, None),
    ({"model_type": "llama", "max_position_embeddings": 4096, "rope_theta": 10000.0}, None),
    ({"text_config": {"max_position_embeddings": 77}, "vision_config": {}}, 77),
])
def test_max_positions(cfg, limit):
    assert max_positions(cfg) == limit
