"""The losses against sentence-transformers 6.2's definitions (same embeddings → same loss), the registry, and the
training data reader (column selection, renaming, score normalisation, line-numbered problems)."""

from __future__ import annotations

import json

import pytest
import torch

from stpipe.errors import ConfigError
from stpipe.training.data import read_training_data
from stpipe.training.losses import build_loss, loss_problems


@pytest.fixture()
def emb():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(6, 8, generator=g) for _ in range(3)], torch.rand(6, generator=g)


def _st(name: str, **kw):
    from sentence_transformers.sentence_transformer import losses

    return getattr(losses, name)(torch.nn.Identity(), **kw)


@pytest.mark.parametrize("name,kw", [("CoSENTLoss", {}), ("CoSENTLoss", {"scale": 7.0}), ("CosineSimilarityLoss", {})])
def test_scored_pair_losses_match_sentence_transformers(emb, name, kw):
    e, y = emb
    ours = build_loss({"name": name, **kw})(e[:2], y)
    torch.testing.assert_close(ours, _st(name, **kw).compute_loss_from_embeddings(e[:2], y), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("columns", [2, 3])  # (anchor, positive) and with a hard negative
def test_mnrl_matches_sentence_transformers(emb, columns):
    e, _ = emb
    ours = build_loss({"name": "mnrl"})(e[:columns], None)
    st = _st("MultipleNegativesRankingLoss").compute_loss_from_embeddings(e[:columns], None)
    torch.testing.assert_close(ours, st, rtol=1e-5, atol=1e-6)


def test_splade_adds_flops_regularisers(emb):
    e, _ = emb
    e = [x.relu() for x in e]
    loss = build_loss({"name": "splade", "query_regularizer_weight": 0.5, "document_regularizer_weight": 0.25})
    ranking = torch.nn.functional.cross_entropy(e[0] @ torch.cat(e[1:2]).T, torch.arange(6))
    flops = lambda x: (x.mean(0) ** 2).sum()  # noqa: E731 - sentence-transformers' FlopsLoss on non-negative input
    torch.testing.assert_close(loss(e[:2], None), ranking + 0.5 * flops(e[0]) + 0.25 * flops(e[1]))


def test_matryoshka_sums_the_inner_loss_at_each_dimension(emb):
    e, y = emb
    inner = build_loss({"name": "cosent"})
    m = build_loss({"name": "matryoshka", "loss": {"name": "cosent"}, "matryoshka_dims": [8, 4],
                    "matryoshka_weights": [1.0, 0.5]})
    torch.testing.assert_close(m(e[:2], y), inner(e[:2], y) + 0.5 * inner([x[:, :4] for x in e[:2]], y))


def test_loss_node_problems():
    assert loss_problems({"name": "CoSENTloss"})[0].hint == "did you mean 'CoSENTLoss'?"
    p = loss_problems({"name": "cosent", "scael": 3})
    assert p and p[0].path == ("loss", "scael")
    assert loss_problems({"name": "matryoshka", "loss": {"name": "nope"}, "matryoshka_dims": [4]})[0].path == \
        ("loss", "loss", "name")


def test_jsonl_columns_renamed_and_scores_normalised(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text("".join(json.dumps({"a": f"x{i}", "b": f"y{i}", "s": i, "extra": 1}) + "\n" for i in range(3)))
    d = read_training_data({"path": str(f), "columns": {"sentence1": "a", "sentence2": "b", "score": "s"},
                            "score_range": [0, 2]})
    assert d.columns == ["sentence1", "sentence2", "score"] and d.rows[2] == ("x2", "y2", 1.0)
    assert read_training_data({"path": str(f), "columns": ["b", "a"]}).rows[0] == ("y0", "x0")


def test_bad_lines_and_missing_columns_are_named(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("q,pos,score\nx,y,1\nx,y,9\nx,y,abc\n")
    with pytest.raises(ConfigError) as e:
        read_training_data({"path": str(f), "score_range": [0, 5]})
    assert [p.source for p in e.value.problems] == [f"{f}:3", f"{f}:4"]
    with pytest.raises(ConfigError) as e:
        read_training_data({"path": str(f), "columns": {"question": "qq"}})
    assert e.value.problems[0].message == "no column 'qq' in the file" and "did you mean 'q'?" in \
        e.value.problems[0].hint


class HalfCosine:
    """A plugin loss: takes scored pairs, one parameter."""

    schema = {"weight": {"type": "number"}}
    min_inputs = max_inputs = 2
    needs_label = True
    input_names = ("sentence1", "sentence2")

    def __init__(self, weight: float = 0.5) -> None:
        self.weight = weight


def test_plugin_losses_register_like_evaluators(monkeypatch):
    from stpipe import catalogue
    from stpipe.training.losses import LOSSES, loss_names, register_loss, unregister_loss

    with pytest.raises(ValueError, match="built-in loss"):  # an alias of a built-in is taken too
        register_loss(HalfCosine, name="cosent")
    register_loss(HalfCosine)
    try:
        assert "HalfCosine" in loss_names()
        assert build_loss({"name": "HalfCosine", "weight": 2.0}).weight == 2.0
        assert [p.path for p in loss_problems({"name": "HalfCosine", "wieght": 2})] == [("loss", "wieght")]
    finally:
        unregister_loss("HalfCosine")
    problem = loss_problems({"name": "HalfCosine"})[0]
    assert (problem.code, problem.path) == ("registry.unknown-loss", ("loss", "name"))

    class EP:  # an installed plugin's entry point whose module does not import
        name, value = "BrokenLoss", "no_such_package.losses:BrokenLoss"

    monkeypatch.setattr(LOSSES, "_loaded", False)
    monkeypatch.setattr(LOSSES, "_specs", dict(LOSSES._specs))
    monkeypatch.setattr(catalogue, "entry_points", lambda group: [EP()] if group == "stpipe.losses" else [])
    assert "BrokenLoss" in loss_names()
    problem = loss_problems({"name": "BrokenLoss"})[0]
    assert problem.path == ("loss", "name") and "cannot be imported" in problem.message
