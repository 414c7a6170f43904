"""The ``Transformer`` contract: tasks, dtype names, config files, processing keys, and its static description
(output feature and dimension from the model's ``config.json``).

>>> describe_output({"transformer_task": "fill-mask"}, {"vocab_size": 30522})
('token_embeddings', 30522)
>>> TRANSFORMER.describe({"model_name_or_path": "m"}, {}, None).produces
{'input_ids': None, 'attention_mask': None, 'token_embeddings': None}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stpipe.contracts.base import Contract, FeatureIO

#: task → (transformers auto class, default method output, module output feature)
TASKS: dict[str, tuple[str, str, str]] = {
    "feature-extraction": ("AutoModel", "last_hidden_state", "token_embeddings"),
    "fill-mask": ("AutoModelForMaskedLM", "logits", "token_embeddings"),
    "sequence-classification": ("AutoModelForSequenceClassification", "logits", "scores"),
    "text-generation": ("AutoModelForCausalLM", "logits", "causal_logits"),
    "any-to-any": ("AutoModelForMultimodalLM", "logits", "causal_logits"),
}
#: causal tasks: left padding, ``logits_to_keep`` (default 1) passed to the model, ``causal_logits`` out
CAUSAL_TASKS = ("text-generation", "any-to-any")
NOT_YET = ("retrieval",)
BACKENDS = ("torch", "onnx", "openvino")
#: the backends stpipe runs
SUPPORTED_BACKENDS = BACKENDS  # onnx/openvino: stpipe.runtimes (extras stpipe[onnx], stpipe[openvino])
#: dtype names accepted in ``model_kwargs.torch_dtype`` / ``dtype`` → the torch attribute they name ("auto" stays)
DTYPE_NAMES: dict[str, str] = {"float32": "float32", "float": "float32", "float16": "float16", "half": "float16",
                               "bfloat16": "bfloat16", "float64": "float64", "double": "float64"}
DUAL_ENCODERS = {"clip", "siglip", "siglip2", "chinese_clip", "altclip", "align", "clipseg", "x_clip", "owlvit",
                 "owlv2", "metaclip_2"}
#: the saved config file, then the legacy names sentence-transformers still reads
CONFIG_FILES = ("sentence_bert_config.json", "sentence_roberta_config.json", "sentence_distilbert_config.json",
                "sentence_camembert_config.json", "sentence_albert_config.json",
                "sentence_xlm-roberta_config.json", "sentence_xlnet_config.json")
KWARG_DICTS = ("model_kwargs", "processor_kwargs", "config_kwargs")
#: keys of ``processing_kwargs``
PROCESSING_KEYS = ("common", "text", "audio", "image", "video", "chat_template")
#: ``modality_config.<modality>.format`` (how messages are laid out)
MESSAGE_FORMATS = ("structured", "flat", "auto")
#: ``processor_kwargs.padding_side`` / ``truncation_side``
SIDES = ("left", "right")
PARAMS = ("model_name_or_path", "transformer_task", "model_kwargs", "processor_kwargs", "config_kwargs",
          "processing_kwargs", "backend", "modality_config", "module_output_name", "unpad_inputs", "query_length",
          "document_length", "max_seq_length", "do_lower_case", "tokenizer_name_or_path")
CONFIG_KEYS = ("transformer_task", "modality_config", "module_output_name", "processing_kwargs", "unpad_inputs",
               "query_length", "document_length")
#: sentence-transformers 6.2's deprecation of ``tokenizer_name_or_path`` (said at build time and by ``validate``)
TOKENIZER_PATH_DEPRECATED = ("The `tokenizer_name_or_path` argument is deprecated and will be removed in a future "
                             "version. Please use the same path for the model and processor.")
CONFIG_KEY_RENAMES = {"model_args": "model_kwargs", "tokenizer_args": "processor_kwargs",
                      "config_args": "config_kwargs"}


def dimension_from_config(cfg: Mapping[str, Any], module_output_name: str | None) -> int | None:
    """sentence-transformers' rule: projection_dim for sentence_embedding, else hidden_size & co."""
    if module_output_name == "sentence_embedding" and isinstance(cfg.get("projection_dim"), int):
        return cfg["projection_dim"]

    def search(c: Mapping[str, Any]) -> int | None:
        if isinstance(c.get("hidden_size"), int):
            return c["hidden_size"]
        for key in ("neck_hidden_sizes", "hidden_sizes", "embed_dims"):
            if isinstance(c.get(key), list) and c[key]:
                return c[key][-1]
        return c["hidden_dim"] if isinstance(c.get("hidden_dim"), int) else None

    subs = [v for k, v in cfg.items() if isinstance(v, Mapping) and k != "text_config" and "model_type" in v]
    for c in [cfg, cfg.get("text_config") or {}, *subs]:
        dim = search(c)
        if dim is not None:
            return dim
    return None


def describe_output(params: Mapping[str, Any], hf: Mapping[str, Any] | None) -> tuple[str, int | None]:
    """(output feature, its dimension) from the node's params and the model's config.json (or None)."""
    task = params.get("transformer_task", "feature-extraction")
    feature = TASKS.get(task, TASKS["feature-extraction"])[2]
    mc, mon = params.get("modality_config"), params.get("module_output_name")
    if mc and mon:
        specs = list(mc.values()) if isinstance(mc, Mapping) else []
        hidden = all(isinstance(s, Mapping) and s.get("method_output_name") == "last_hidden_state" for s in specs)
        dim = dimension_from_config(hf, mon) if hf and (mon == "sentence_embedding" or hidden) else None
        return mon, dim
    if task == "sequence-classification":
        ck = params.get("config_kwargs") or {}
        if "num_labels" in ck:
            return "scores", ck["num_labels"]
        if hf and any(str(a).endswith("ForSequenceClassification") for a in hf.get("architectures") or []):
            return "scores", len(hf.get("id2label") or {}) or hf.get("num_labels") or 2
        return "scores", 1
    if hf is None:
        return feature, None
    if task == "fill-mask" or task in CAUSAL_TASKS:  # logits over the vocabulary
        return feature, hf.get("vocab_size") or (hf.get("text_config") or {}).get("vocab_size")
    if task == "feature-extraction" and (hf.get("model_type") in DUAL_ENCODERS or (
            "text_config" in hf and "vision_config" in hf and "projection_dim" in hf)):
        return "sentence_embedding", dimension_from_config(hf, "sentence_embedding")
    return feature, dimension_from_config(hf, feature)


def describe(params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
    """Token ids and mask, plus the task's output feature with its dimension from the model's config.json."""
    hf = None
    if ctx is not None and params.get("model_name_or_path"):
        hf = ctx.hf_config(params["model_name_or_path"])
    out, dim = describe_output(params, hf)
    return FeatureIO(consumes={}, produces={"input_ids": None, "attention_mask": None, out: dim})


def deprecated_params(params: Mapping[str, Any]) -> list[tuple[list[str], str]]:
    """``tokenizer_name_or_path`` when a node sets it, with what to do instead (``stpipe validate``'s warning)."""
    if params.get("tokenizer_name_or_path") is None:
        return []
    return [(["tokenizer_name_or_path"], "save the tokenizer/processor files in the model folder and drop "
                                         "tokenizer_name_or_path (sentence-transformers deprecates it too)")]


TRANSFORMER = Contract(
    name="Transformer", describe=describe, params=PARAMS, is_input=True, config_files=CONFIG_FILES,
    config_keys=CONFIG_KEYS, config_key_renames=CONFIG_KEY_RENAMES,
    enums={"transformer_task": tuple(TASKS), "backend": SUPPORTED_BACKENDS, "processing_kwargs": PROCESSING_KEYS,
           "modality_config.format": MESSAGE_FORMATS, "processor_kwargs.padding_side": SIDES,
           "processor_kwargs.truncation_side": SIDES}, deprecated=deprecated_params)
