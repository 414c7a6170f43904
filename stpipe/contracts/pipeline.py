"""Torch-free facts about a whole pipeline definition and its saved folder, read by config, formats, builder and
runtime alike so they cannot drift (issue 18: one source per rule).

>>> MODULES_JSON, ROUTER_CONFIG, EXPORT_MANIFEST
('modules.json', 'router_config.json', 'stpipe_export.json')
"""

from __future__ import annotations

from typing import Any

from stpipe.errors import ModelTypeError

#: the list of modules of a saved sentence-transformers folder
MODULES_JSON = "modules.json"
#: a saved Router's configuration (its routes, their module types and folders)
ROUTER_CONFIG = "router_config.json"
#: the manifest of a graph export (``stpipe export … format=onnx|openvino``)
EXPORT_MANIFEST = "stpipe_export.json"
#: the graph formats stpipe exports to and runs; each is an optional extra of the same name
EXPORT_FORMATS = ("onnx", "openvino")
#: ``quantize=`` values of a graph export: dynamic (activations quantised per batch at run time), static (calibrated)
EXPORT_QUANTIZE = ("int8", "int8-static")
#: ``optimize=`` levels of an ONNX graph export (ONNX Runtime's basic rewrites, transformer fusions, fast GELU)
EXPORT_OPTIMIZE = ("O1", "O2", "O3")
#: sentence-transformers' model-level config (prompts, similarity function, versions)
ST_CONFIG = "config_sentence_transformers.json"

# ------------------------------------------------------------------------------------------ the definition
#: keys of a module node that are not constructor parameters
NODE_KEYS = ("type", "id", "load_from")
#: node parameters that name a model on this machine or on the hub (resolved by the builder, checked by config)
PATH_PARAMS = ("model_name_or_path", "tokenizer_name_or_path", "tokenizer")
#: the definition's model-level keys the Pipeline takes
PIPELINE_KEYS = ("name", "model_type", "similarity_fn_name", "prompts", "default_prompt_name", "truncate_dim",
                 "max_active_dims", "activation_fn")
#: deepest nesting a definition may have (YAML, dicts and Routers alike)
MAX_DEPTH = 100

#: the values of a model definition's ``dtype`` (precision to run in; :mod:`stpipe.hardware` resolves ``auto``)
DTYPES = ("fp32", "bf16", "fp16", "auto")
#: ``dtype`` → the name of the torch dtype (``torch.<name>``) and of Hugging Face's ``model_kwargs.dtype``
TORCH_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}

# ------------------------------------------------------------------------------------------ model types
MODEL_TYPES = ("SentenceTransformer", "SparseEncoder", "CrossEncoder")
#: the similarity functions a model may name (``similarity_fn_name``)
SIMILARITY_NAMES = ("cosine", "dot", "euclidean", "manhattan")
#: model-level keys that do not apply to a CrossEncoder (it scores pairs: no similarity, no truncation)
CROSS_ENCODER_EXCLUDES = ("similarity_fn_name", "truncate_dim", "max_active_dims")


def default_similarity(model_type: str | None) -> str | None:
    """The similarity function a model type uses when none is saved or set: dot for a SparseEncoder, cosine for a
    SentenceTransformer, none for a CrossEncoder (sentence-transformers 6.2).

    >>> default_similarity("SparseEncoder"), default_similarity(None), default_similarity("CrossEncoder")
    ('dot', 'cosine', None)
    """
    if model_type == "CrossEncoder":
        return None
    return "dot" if model_type == "SparseEncoder" else "cosine"


def truncation_key(model_type: str | None) -> str | None:
    """The model-level key that shortens embeddings for a model type: ``max_active_dims`` (sparse),
    ``truncate_dim`` (dense); None for a CrossEncoder.

    >>> truncation_key("SparseEncoder"), truncation_key("SentenceTransformer")
    ('max_active_dims', 'truncate_dim')
    """
    if model_type == "CrossEncoder":
        return None
    return "max_active_dims" if model_type == "SparseEncoder" else "truncate_dim"


def other_truncation_key(model_type: str | None) -> str:
    """The truncation key that does not apply to ``model_type`` (``truncate_dim`` for a SparseEncoder …)."""
    return "truncate_dim" if model_type == "SparseEncoder" else "max_active_dims"


def not_a_cross_encoder(pipeline: Any, method: str) -> ModelTypeError:
    """The error for ``predict``/``rank`` on a pipeline that returns embeddings."""
    kind = getattr(pipeline, "model_type", type(pipeline).__name__)
    if kind == "CrossEncoder":  # a plain Pipeline told it is one
        return ModelTypeError(f"{method}() needs a stpipe.cross_encoder.CrossEncoder, not a Pipeline with "
                              "model_type='CrossEncoder'", hint="build the model with stpipe.build / stpipe.load, "
                              "or construct stpipe.cross_encoder.CrossEncoder(modules)")
    return ModelTypeError(
        f"{method}() scores pairs and needs a CrossEncoder, but this is a {kind} model (it returns embeddings)",
        hint="use encode() and similarity() on an embedding model, or set model_type: CrossEncoder on a model whose "
             "modules end in 'scores' (e.g. a Transformer with transformer_task: sequence-classification)")
