"""``stpipe predict`` (:mod:`stpipe.commands.predict`), the cheap part: a model that is not a CrossEncoder is refused
before any weight loads. Scores against the oracle: tests/test_cross_encoder_cli.py."""

from __future__ import annotations


def test_an_embedding_model_is_refused_before_it_loads(cli, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a question\ta document\n")
    rc, _, err = cli("predict", f"inputs={pairs}")
    assert rc == 2
    assert "[run.model-type] model_type" in err and "stpipe predict scores pairs with a CrossEncoder" in err
    assert "but this model is a SentenceTransformer" in err
