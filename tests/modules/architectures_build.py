"""Tiny random models for the architecture matrix (:mod:`tests.modules.architectures_matrix`), built offline.

:func:`model_types` lists the model types transformers maps for a ``transformer_task`` (its Auto mappings);
:func:`build_tiny` shrinks the model type's default config (hidden 32, 2 layers, 2 heads, a vocabulary of
:data:`VOCAB_SIZE`), initialises the task's class at random, and saves it with a WordPiece tokenizer built here
(no file from the network). It returns the reason when a model type cannot be built that way.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

#: transformer_task → the transformers Auto mapping whose model types the matrix enumerates
TASK_MAPPINGS = {
    "feature-extraction": "MODEL_MAPPING_NAMES",
    "fill-mask": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "sequence-classification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "text-generation": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "any-to-any": "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES",
}
HIDDEN, FFN, HEADS, LAYERS, VOCAB_SIZE, POSITIONS = 32, 64, 2, 2, 160, 128
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
#: config keys set to the tiny sizes wherever the model type's config has them
SIZES: dict[str, Any] = {
    **dict.fromkeys(("hidden_size", "d_model", "n_embd", "embed_dim", "dim", "emb_dim", "embedding_size",
                     "word_embed_proj_dim", "d_embed", "n_embed"), HIDDEN),
    **dict.fromkeys(("num_hidden_layers", "num_layers", "n_layer", "n_layers", "encoder_layers", "decoder_layers",
                     "num_decoder_layers", "num_encoder_layers"), LAYERS),
    **dict.fromkeys(("num_attention_heads", "n_head", "n_heads", "encoder_attention_heads",
                     "decoder_attention_heads", "num_heads", "num_key_value_heads", "n_kv_heads",
                     "multi_query_group_num", "num_kv_heads"), HEADS),
    **dict.fromkeys(("intermediate_size", "ffn_dim", "encoder_ffn_dim", "decoder_ffn_dim", "d_ff", "n_inner",
                     "d_inner", "inner_dim", "hidden_dim", "moe_intermediate_size", "shared_expert_intermediate_size",
                     "ffn_hidden_size"), FFN),
    **dict.fromkeys(("head_dim", "d_kv", "d_head", "attention_head_size", "kv_channels"), HIDDEN // HEADS),
    **dict.fromkeys(("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "max_sequence_length"),
                    POSITIONS),
    **dict.fromkeys(("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts"), 2),
    **dict.fromkeys(("num_experts_per_tok", "n_shared_experts", "moe_topk", "top_k"), 1),
    "vocab_size": VOCAB_SIZE,
    **dict.fromkeys(("pad_token_id", "decoder_start_token_id"), 0),
    **dict.fromkeys(("bos_token_id", "cls_token_id"), 2),
    **dict.fromkeys(("eos_token_id", "sep_token_id", "forced_eos_token_id"), 3),
    "mask_token_id": 4,
}
#: an image model's sizes (a ViT image processor resizes to image_size)
IMAGE_SIZES = {"image_size": 32, "patch_size": 8, "num_channels": 3}
#: inputs a model type's main input names → what the matrix would need to feed it
NON_TEXT = {"pixel_values": "image", "input_features": "audio", "input_values": "audio", "pixel_values_videos": "video",
            "flattened_patches": "image", "audio_values": "audio"}


def model_types(task: str) -> list[str]:
    """The model types transformers maps for ``task``, sorted."""
    from transformers.models.auto import modeling_auto

    return sorted(getattr(modeling_auto, TASK_MAPPINGS[task]))


@functools.cache
def _tokenizer() -> Any:
    """A lower-casing WordPiece tokenizer over the test vocabulary (tests/conftest.py WORDS), [CLS] … [SEP]."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from tests.conftest import WORDS

    vocab = list(dict.fromkeys(SPECIALS + sorted(set(WORDS)) + list("abcdefghijklmnopqrstuvwxyz?.,")))
    assert len(vocab) <= VOCAB_SIZE
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", bos_token="[CLS]", eos_token="[SEP]",
                                   model_max_length=64)


def shrink(config: Any) -> Any:
    """``config`` (and its sub-configs) with the tiny sizes of :data:`SIZES` where it has those keys."""
    present = config.to_dict()
    for key, value in SIZES.items():
        if key in present and not isinstance(present[key], dict):
            try:
                setattr(config, key, value)
            except Exception:  # noqa: BLE001,S110 - read-only or derived attributes keep their value
                pass
    layers = next((getattr(config, k) for k in ("num_hidden_layers", "num_layers") if isinstance(
        getattr(config, k, None), int)), None)
    for key in ("layer_types", "block_types", "layers_block_type", "attn_type_list"):
        value = getattr(config, key, None)
        if isinstance(value, list) and layers:
            setattr(config, key, (value * layers)[:layers])
    for key in getattr(config, "sub_configs", {}) or {}:
        sub = getattr(config, key, None)
        if sub is not None and hasattr(sub, "to_dict"):
            shrink(sub)
    return config


def model_class(model_type: str, task: str) -> Any:
    """The transformers class the task's Auto mapping names for ``model_type`` (None if transformers lacks it)."""
    import transformers
    from transformers.models.auto import modeling_auto

    name = getattr(modeling_auto, TASK_MAPPINGS[task])[model_type]
    name = name[0] if isinstance(name, (list, tuple)) else name
    return getattr(transformers, name, None)


def build_tiny(model_type: str, task: str, folder: Path) -> str | None:
    """Save a tiny random ``model_type`` model for ``task`` and the WordPiece tokenizer to ``folder``; the reason
    (a string) when that is not possible offline, None when built."""
    import torch
    from transformers import AutoConfig

    cls = model_class(model_type, task)
    if cls is None:
        return "transformers lists the type but does not export its class"
    inputs = getattr(cls, "main_input_name", "input_ids")
    if inputs not in ("input_ids", "pixel_values"):
        kind = NON_TEXT.get(inputs, inputs)
        return (f"needs {'an' if kind[0] in 'aeiou' else 'a'} {kind} processor (main input {inputs}); the matrix "
                "builds text and image models")
    config = shrink(AutoConfig.for_model(model_type))
    subs = [k for k in getattr(config, "sub_configs", {}) or {} if k not in ("text_config", "decoder", "encoder")]
    if any(k in subs for k in ("vision_config", "audio_config", "speech_config", "vision_encoder_config")):
        return f"multimodal ({', '.join(subs)}): needs a processor with image/audio tokens, not built offline here"
    if inputs == "pixel_values":
        staged = [k for k in ("hidden_sizes", "depths", "embed_dims", "embed_dim") if isinstance(
            getattr(config, k, None), (list, tuple))]
        if staged or not isinstance(getattr(config, "patch_size", None), int):
            return ("an image model with per-stage sizes (" + (", ".join(staged) or "no patch_size") + "): the "
                    "matrix shrinks only ViT-like image models")
        for key, value in IMAGE_SIZES.items():
            if hasattr(config, key) and isinstance(getattr(config, key), int):
                setattr(config, key, value)
    torch.manual_seed(0)
    model = cls(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if inputs == "pixel_values":
        from transformers import ViTImageProcessor

        size = IMAGE_SIZES["image_size"]
        ViTImageProcessor(size={"height": size, "width": size}).save_pretrained(folder)
    else:
        _tokenizer().save_pretrained(folder)
    return None
