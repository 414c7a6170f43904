"""Similarity and quantisation (:mod:`stpipe.similarity`) on vectors small enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stpipe.similarity import (
    check_similarity_name,
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    pairwise_cos_sim,
    quantize_embeddings,
    select_max_active_dims,
)

A = [[3.0, 4.0], [1.0, 0.0]]
B = [[0.0, 1.0]]


def test_the_four_similarities_by_hand():
    assert np.allclose(cos_sim(A, B).numpy(), [[0.8], [0.0]])
    assert dot_score(A, B).tolist() == [[4.0], [0.0]]
    assert np.allclose(euclidean_sim(A, B).numpy(), [[-(9 + 9) ** 0.5], [-(2 ** 0.5)]])
    assert manhattan_sim(A, B).tolist() == [[-6.0], [-2.0]]
    assert pairwise_cos_sim(A, [[4.0, 3.0], [0.0, 2.0]]).tolist() == pytest.approx([24 / 25, 0.0])


def test_similarity_names():
    assert check_similarity_name("cosine") == "cosine"
    with pytest.raises(ValueError, match="maxsim"):
        check_similarity_name("maxsim")


def test_quantisation_by_hand():
    e = np.array([[-1.0, 0.0, 2.0, 0.5, 0, 0, 0, 1], [1.0, 2.0, -2.0, 0.5, 0, 0, 0, 0]], dtype=np.float32)
    assert quantize_embeddings(e, "ubinary").tolist() == [[0b00110001], [0b11010000]]
    assert quantize_embeddings(e, "binary").tolist() == [[0b00110001 - 128], [0b11010000 - 128]]
    ranged = np.array([[0.0, 7.0], [255.0, 7.0], [100.0, 7.0]], dtype=np.float32)  # steps of 1; a constant column
    assert quantize_embeddings(ranged, "uint8").tolist() == [[0, 0], [255, 0], [100, 0]]
    assert quantize_embeddings(ranged, "int8").tolist() == [[-128, -128], [127, -128], [-28, -128]]
    with pytest.raises(ValueError, match="single embedding"):
        quantize_embeddings(e[:1], "int8")


def test_max_active_dims_keeps_the_largest_magnitudes():
    x = torch.tensor([[0.1, -3.0, 2.0, 0.5]])
    assert select_max_active_dims(x, 2).tolist() == [[0.0, -3.0, 2.0, 0.0]]
    assert select_max_active_dims(x, None) is x
    with pytest.raises(ValueError):
        select_max_active_dims(x, 0)
