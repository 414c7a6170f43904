"""The static embeddings' and SpladePooling's contracts (:mod:`stpipe.contracts.static`): their widths."""

from __future__ import annotations

from stpipe.contracts.static import describe_sparse_static, describe_splade, describe_static, vocab_size


def test_static_embedding_width_from_the_dimension_or_the_weights():
    assert describe_static({"embedding_dim": 8}, {}).produces == {"sentence_embedding": 8}
    assert describe_static({"embedding_weights": [[0.0, 1.0, 2.0]]}, {}).produces == {"sentence_embedding": 3}
    assert describe_static({}, {}).produces == {"sentence_embedding": None}


def test_sparse_widths_are_the_vocabulary(tmp_path):
    assert describe_sparse_static({"weight": [1.0, 0.5, 0.2]}, {}).produces == {"sentence_embedding": 3}
    assert vocab_size(str(tmp_path)) is None and vocab_size(None) is None  # no tokenizer.json here
    (tmp_path / "tokenizer.json").write_text("{broken")
    assert vocab_size(str(tmp_path)) is None  # reported when the module is built, not here
    io = describe_splade({}, {"token_embeddings": 30522})
    assert io.produces == {"sentence_embedding": 30522} and io.requires_dim == []
    assert describe_splade({"embedding_dimension": 5}, {}).requires_dim == [("token_embeddings", 5,
                                                                             "embedding_dimension")]
