"""The encode loop's pieces (:mod:`stpipe.encoding`): argument checks, prompts, what counts as one input, and
batches by token count, padded on the model's side."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import stpipe.encoding as enc
from stpipe.encoding import (
    as_input_list,
    check_max_batch_tokens,
    check_truncate_dim,
    is_single_input,
    pad_batch,
    resolve_prompt,
    token_batches,
)


def test_positive_integers_or_none():
    assert check_truncate_dim(None) is None and check_truncate_dim(8) == 8
    assert check_max_batch_tokens(None) is None and check_max_batch_tokens(512) == 512
    for bad in (0, True, 2.5):
        with pytest.raises(ValueError):
            check_truncate_dim(bad)
        with pytest.raises(ValueError):
            check_max_batch_tokens(bad)


def test_prompt_text_wins_then_the_name_then_the_default():
    prompts = {"query": "q: ", "document": "d: "}
    assert resolve_prompt(prompts, "document", "x: ", "query") == "x: "
    assert resolve_prompt(prompts, "document", None, "query") == "q: "
    assert resolve_prompt(prompts, "document", None, None) == "d: "
    assert resolve_prompt(prompts, None, None, None) is None
    with pytest.raises(ValueError, match="Prompt name 'qeury' not found"):
        resolve_prompt(prompts, None, None, "qeury")


def test_one_input_or_a_batch():
    assert is_single_input("a text") and is_single_input([{"role": "user", "content": "hi"}])
    assert not is_single_input(["a", "b"]) and not is_single_input(np.array(["a", "b"]))
    assert as_input_list("a") == (["a"], True) and as_input_list(("a", "b")) == (["a", "b"], False)
    assert as_input_list(x for x in "ab") == (["a", "b"], False)


def test_batches_by_descending_length_within_a_token_budget():
    assert token_batches([3, 9, 5, 9], batch_size=2) == [[1, 3], [2, 0]]
    assert token_batches([3, 9, 5, 9], batch_size=4, max_batch_tokens=18) == [[1, 3], [2, 0]]
    assert token_batches([30, 2], batch_size=4, max_batch_tokens=10) == [[0], [1]]  # too long: alone


def test_padding_on_either_side():
    cols = {"input_ids": [[5, 6, 7], [8]], "attention_mask": [[1, 1, 1], [1]]}
    right = pad_batch(cols, [0, 1], {"input_ids": 0})
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]] and right["attention_mask"].tolist()[1] == [1, 0, 0]
    left = pad_batch(cols, [1], {"input_ids": 9}, side="left")
    assert left["input_ids"].tolist() == [[8]]
    left = pad_batch(cols, [1, 0], {"input_ids": 9}, side="left")
    assert left["input_ids"].tolist() == [[9, 9, 8], [5, 6, 7]]


def test_non_finite_embeddings_are_never_returned_silently():
    rows = [torch.tensor([1.0, 0.0]), torch.tensor([float("nan"), 1.0]), torch.tensor([0.5, float("inf")])]
    expected = r"non-finite embeddings \(NaN or inf\) for 2 of 3 inputs \(first: \[1, 2\]\)"
    with pytest.warns(RuntimeWarning, match=expected):
        out = enc.finish_dense(rows, False, output_value="sentence_embedding", precision="float32",
                               convert_to_tensor=False, convert_to_numpy=True, device=torch.device("cpu"))
    assert out.shape == (3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # finite rows: no warning
        enc.finish_dense(rows[:1], False, output_value="sentence_embedding", precision="float32",
                         convert_to_tensor=True, convert_to_numpy=False, device=torch.device("cpu"))
