"""Fixtures of the corpus tests: a tiny static-embedding model (fast to build, exact to compare) and corpora."""

from __future__ import annotations

import random
from pathlib import Path

import pytest


def write_static_model(path: Path, tokenizer_dir: Path, dim: int = 16) -> Path:
    """A saved model of one StaticEmbedding (seeded random rows) over the tiny BERT's WordPiece tokenizer."""
    import torch

    from stpipe.modules.static import StaticEmbedding
    from stpipe.pipeline import Pipeline

    torch.manual_seed(0)
    Pipeline([StaticEmbedding(str(tokenizer_dir), embedding_dim=dim)], name="tiny-static", device="cpu").save(path)
    return path


WORDS = ("the a of to in and is was for on with cat dog bird house car tree city paris france weather rain what "
         "where capital photo query document model sentence good big red blue run walk man woman music book").split()


def corpus_lines(n: int, seed: int = 0) -> list[str]:
    """``n`` generated sentences of 1 … 12 words (the words are in the tiny BERT's vocabulary)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) for _ in range(n)]


@pytest.fixture(scope="session")
def static_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    return write_static_model(tmp_path_factory.mktemp("tiny-static") / "model", tiny_bert_dir)
