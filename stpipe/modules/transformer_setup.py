"""Building a ``Transformer``: parameter checks, model / processor loading and ``modality_config`` inference.

Stateless helpers of :mod:`stpipe.modules.transformer`: which ``transformers`` class a ``transformer_task``
loads (encoder-only classes for T5-like models), dtype names from YAML, what a processor handles (text, image,
audio, video, a chat template) and the ``modality_config`` a model implies (``forward`` or one
``get_<modality>_features`` method per modality for dual encoders such as CLIP). The tasks, dtype names and the
weight-free description of a node live in :mod:`stpipe.contracts.transformer` (re-exported here).
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from stpipe.contracts.modality_edge_cases import edge_case
from stpipe.contracts.transformer import (  # noqa: F401 - re-exported
    BACKENDS,
    DTYPE_NAMES,
    DUAL_ENCODERS,
    NOT_YET,
    SECURITY_KWARGS,
    TASKS,
    describe_output,
    dimension_from_config,
    strip_security_kwargs,
)
from stpipe.errors import LoadError, did_you_mean
from stpipe.modules.messages import message_entry
from stpipe.modules.modality import MODALITIES, modality_str, normalize_modality
from stpipe.resources import local_model

logger = logging.getLogger("stpipe.modules.transformer")  # the records keep the Transformer module's logger

ENCODER_ONLY = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel",
                "longt5": "LongT5EncoderModel", "switch_transformers": "SwitchTransformersEncoderModel",
                "udop": "UdopEncoderModel", "t5gemma": "T5GemmaEncoderModel"}
DTYPES = {name: getattr(torch, attr) for name, attr in DTYPE_NAMES.items()}


# ------------------------------------------------------------------------------------ parameters
def check_task(task: Any) -> str:
    """``task`` if it is a supported ``transformer_task``; ValueError (with a suggestion) otherwise."""
    if task in TASKS:
        return task
    if task in NOT_YET:
        raise ValueError(f"transformer_task '{task}' is not supported yet; supported: {', '.join(TASKS)}")
    hint = did_you_mean(str(task), [*TASKS, *NOT_YET])
    raise ValueError(f"unknown transformer_task {task!r}; valid tasks: {', '.join([*TASKS, *NOT_YET])}"
                     + (f" ({hint})" if hint else ""))


def check_backend(backend: Any) -> str:
    """``backend`` if it is one stpipe runs (torch, onnx, openvino); ValueError otherwise."""
    if backend in BACKENDS:
        return backend
    hint = did_you_mean(str(backend), list(BACKENDS))
    raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}" + (f" ({hint})" if hint else ""))


def convert_dtype(model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``torch_dtype`` / ``dtype`` given as a string (YAML) → a torch dtype; "auto" stays."""
    for key in ("torch_dtype", "dtype"):
        value = model_kwargs.get(key)
        if value is None or isinstance(value, torch.dtype) or value == "auto":
            continue
        name = value.removeprefix("torch.") if isinstance(value, str) else None
        if name not in DTYPES:
            hint = did_you_mean(str(value), [*DTYPES, "auto"])
            raise ValueError(f"model_kwargs.{key}: unknown dtype {value!r}; valid: 'auto', 'float32', 'float16', "
                             "'bfloat16', 'float64'" + (f" ({hint})" if hint else ""))
        model_kwargs[key] = DTYPES[name]
    both = [model_kwargs.get(k) for k in ("torch_dtype", "dtype")]
    if None not in both and both[0] != both[1]:
        raise ValueError(f"model_kwargs sets both torch_dtype ({both[0]}) and dtype ({both[1]}), to different "
                         "values; give only one (dtype is the current name, torch_dtype the older alias)")
    return model_kwargs


def refuse_pickle(model_name_or_path: str, model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Weights load from safetensors only, unless ``model_kwargs.use_safetensors`` is set to None/False
    explicitly (``Transformer.load(..., allow_pickle=True)`` does that): a ``pytorch_model.bin`` is a pickle."""
    if "use_safetensors" in model_kwargs:
        return model_kwargs
    local = Path(model_name_or_path)
    if local.is_dir() and not any(local.glob("*.safetensors")) and any(local.glob("pytorch_model*.bin")):
        raise LoadError("refusing to load pickle weights 'pytorch_model.bin' (pickle can execute code)",
                        path=str(local / "pytorch_model.bin"),
                        hint="convert the checkpoint to safetensors; if you trust it, set model_kwargs: "
                             "{use_safetensors: null} or load with allow_pickle=True")
    return {**model_kwargs, "use_safetensors": True}


def load_model(model_name_or_path: str, transformer_task: str, model_kwargs: dict[str, Any],
               config_kwargs: dict[str, Any]) -> torch.nn.Module:
    """The Hugging Face model for ``transformer_task`` (no KV cache; ``num_labels=1`` for a new classifier)."""
    import transformers

    model_name_or_path = on_disk(model_name_or_path, model_kwargs)

    try:
        config = transformers.AutoConfig.from_pretrained(model_name_or_path, **config_kwargs)
    except (OSError, ValueError) as exc:
        local = Path(model_name_or_path, "config.json")
        raise LoadError(f"cannot load the Hugging Face config of '{model_name_or_path}': {exc}",
                        path=str(local) if local.is_file() else None,
                        hint="model_name_or_path must be a local model directory or a model in the "
                             "Hugging Face cache") from exc
    if "use_cache" not in config_kwargs:
        for c in [config, *(getattr(config, k, None) for k in getattr(config, "sub_configs", {}))]:
            if c is not None and hasattr(c, "use_cache"):  # no KV cache for embedding
                c.use_cache = False
    auto_name = TASKS[transformer_task][0]
    if transformer_task == "sequence-classification" and "num_labels" not in config_kwargs and \
            not any(a.endswith("ForSequenceClassification") for a in (config.architectures or [])):
        config.num_labels = 1
    cls = getattr(transformers, auto_name)
    if transformer_task == "feature-extraction" and getattr(config, "is_encoder_decoder", False):
        cls = getattr(transformers, ENCODER_ONLY.get(config.model_type, ""), cls)
    model_kwargs = refuse_pickle(model_name_or_path, model_kwargs)
    try:
        return cls.from_pretrained(model_name_or_path, config=config, **model_kwargs)
    except SafetensorError as exc:
        files = sorted(Path(model_name_or_path).glob("*.safetensors")) or [Path(model_name_or_path)]
        raise LoadError(f"cannot read the safetensors weights: {exc}", path=str(files[0]),
                        hint="the file is truncated or corrupt; re-save or re-download the model") from exc
    except (OSError, ValueError) as exc:
        raise LoadError(f"cannot load the model '{model_name_or_path}' ({cls.__name__}): {exc}",
                        hint="check model_name_or_path, transformer_task and model_kwargs") from exc


def on_disk(name_or_path: str, hub_kwargs: Mapping[str, Any]) -> str:
    """The local directory transformers loads from: a hub id goes through :func:`stpipe.resources.local_model`
    (the Hugging Face cache, else one download attempt), so ``from_pretrained`` never retries the network."""
    return local_model(name_or_path, revision=hub_kwargs.get("revision"), cache_folder=hub_kwargs.get("cache_dir"),
                       token=hub_kwargs.get("token"), local_files_only=bool(hub_kwargs.get("local_files_only")))


def load_processor(path: str, kwargs: dict[str, Any]) -> Any:
    from transformers import AutoProcessor, AutoTokenizer

    path = on_disk(path, kwargs)

    try:
        return AutoProcessor.from_pretrained(path, **kwargs)
    except Exception as first:  # some checkpoints only have a tokenizer AutoProcessor cannot dispatch
        try:
            return AutoTokenizer.from_pretrained(path, **kwargs)
        except Exception:
            bad = processor_file(path)
            raise LoadError(f"cannot load a processor or tokenizer from '{path}': {first}", path=bad,
                            hint="the file is truncated or corrupt; re-save or re-download the model" if bad else
                                 "the folder needs tokenizer/processor files (tokenizer.json, "
                                 "preprocessor_config.json, …)") from first


#: the files a processor / tokenizer is read from, the likeliest culprit first
PROCESSOR_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json")


def processor_file(folder: str) -> str | None:
    """The processor file of a local folder that failed to load: the first that is not readable JSON, else
    ``tokenizer.json`` when there is one (its content did not parse); None for a folder without them."""
    import json

    present = [Path(folder, n) for n in PROCESSOR_FILES if Path(folder, n).is_file()]
    for f in present:
        try:
            json.loads(f.read_text(encoding="utf-8"))
        except (ValueError, OSError, RecursionError):
            return str(f)
    return str(present[0]) if present and present[0].name == "tokenizer.json" else None


def add_lowercase(tok: Any) -> bool:
    """Put a Lowercase normalizer in front of a fast tokenizer's (unless one is there); False if impossible."""
    import json

    from tokenizers import normalizers

    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return False

    def has(n: Any) -> bool:
        return isinstance(n, dict) and (n.get("type") == "Lowercase" or any(has(x) for x in n.get("normalizers") or []))

    if not has(json.loads(backend.to_str()).get("normalizer")):
        current = backend.normalizer
        backend.normalizer = normalizers.Sequence([normalizers.Lowercase(), current]) if current else \
            normalizers.Lowercase()
    return True


# ------------------------------------------------------------------------------------ modality_config
def infer_modality_config(model: torch.nn.Module, processor: Any, transformer_task: str, modality_config: Any,
                          module_output_name: str | None) -> tuple[dict[Any, dict[str, Any]], str]:
    """``(modality_config, module_output_name)``: the given ones checked, or inferred from model and processor."""
    if modality_config is not None:
        if not module_output_name:
            raise ValueError("modality_config requires module_output_name too (the feature this module "
                             "writes, e.g. 'token_embeddings' or 'sentence_embedding')")
        config = check_modality_config(modality_config)
        check_methods(model, config)
        return config, module_output_name
    _, method_out, feature = TASKS[transformer_task]
    model_type = getattr(model.config, "model_type", None)
    fixed = edge_case(transformer_task, model_type)  # sentence-transformers' per-model-type table comes first
    if fixed is not None:
        config, feature = fixed
        if has_chat_template(processor) and "message" not in config:
            config["message"] = message_entry(config, method_out, model_type, processor)
        return config, _check_output_name(module_output_name, feature)
    modalities = processor_modalities(processor)
    if returns_field(model.forward, method_out):
        config = {m: {"method": "forward", "method_output_name": method_out} for m in modalities}
    else:  # a dual encoder such as CLIP: one get_<modality>_features method per modality
        config, feature = {}, "sentence_embedding"
        for m in modalities:
            fn = getattr(model, f"get_{m}_features", None)
            if fn is not None:
                out = "pooler_output" if returns_field(fn, "pooler_output") else None
                config[m] = {"method": f"get_{m}_features", "method_output_name": out}
    if has_chat_template(processor) and "message" not in config and feature != "sentence_embedding":
        config["message"] = message_entry(config, method_out, model_type, processor)  # not on a dual encoder
    return config, _check_output_name(module_output_name, feature)


def _check_output_name(module_output_name: str | None, feature: str) -> str:
    if module_output_name and module_output_name != feature:
        raise ValueError(f"module_output_name={module_output_name!r} needs a modality_config that produces it; "
                         f"without one this module writes '{feature}'")
    return feature


def returns_field(fn: Any, name: str) -> bool:
    """Whether ``fn``'s return annotation is a ModelOutput with field ``name`` (True when unknowable)."""
    try:
        ret = typing.get_type_hints(fn).get("return")
    except Exception:
        return True
    if ret is None:
        return True
    for c in (ret, *typing.get_args(ret)):
        if isinstance(c, type) and dataclasses.is_dataclass(c) and name in {f.name for f in dataclasses.fields(c)}:
            return True
    return False


def is_tokenizer(obj: Any) -> bool:
    from transformers import PreTrainedTokenizerBase

    return isinstance(obj, PreTrainedTokenizerBase)


def has_chat_template(processor: Any) -> bool:
    return bool(getattr(processor, "chat_template", None))


def processor_modalities(processor: Any) -> list[str]:
    """Modalities a processor handles, in the canonical order text, image, audio, video."""
    from transformers import ProcessorMixin
    from transformers.feature_extraction_utils import FeatureExtractionMixin
    from transformers.image_processing_utils import BaseImageProcessor

    try:
        from transformers.video_processing_utils import BaseVideoProcessor
    except ImportError:  # pragma: no cover - older transformers
        BaseVideoProcessor = ()  # type: ignore[assignment]  # noqa: N806

    def kind(obj: Any) -> str | None:
        if is_tokenizer(obj):
            return "text"
        if BaseVideoProcessor and isinstance(obj, BaseVideoProcessor):
            return "video"
        if isinstance(obj, BaseImageProcessor):
            return "image"
        return "audio" if isinstance(obj, FeatureExtractionMixin) else None

    if isinstance(processor, ProcessorMixin):
        names = processor.get_attributes() if hasattr(processor, "get_attributes") else processor.attributes
        found = {kind(getattr(processor, a, None)) for a in names}
    else:
        found = {kind(processor)}
    return [m for m in ("text", "image", "audio", "video") if m in found]


def check_modality_config(mc: Any) -> dict[Any, dict[str, Any]]:
    if not isinstance(mc, Mapping) or not mc:
        raise ValueError(f"modality_config must be a non-empty mapping of modality → {{method, "
                         f"method_output_name}}, got {mc!r}")
    out: dict[Any, dict[str, Any]] = {}
    for key, spec in mc.items():
        modality = normalize_modality(key)
        parts = modality if isinstance(modality, tuple) else (modality,)
        bad = [p for p in parts if p not in MODALITIES]
        if bad:
            raise ValueError(f"modality_config: unknown modality {bad[0]!r}; valid: {', '.join(MODALITIES)} or "
                             "a combination such as 'image+text'")
        if not isinstance(spec, Mapping) or "method" not in spec or "method_output_name" not in spec:
            raise ValueError(f"modality_config[{key!r}] must be a dict with 'method' and 'method_output_name' "
                             f"keys, got {spec!r}")
        out[modality] = dict(spec)
    return out


def check_methods(model: torch.nn.Module, config: Mapping[Any, Mapping[str, Any]]) -> None:
    """Every ``modality_config`` method exists on the loaded model (else a ValueError naming the modality, the
    method, and the model's ``forward`` / ``get_*_features`` methods, with a did-you-mean)."""
    available = ["forward", *sorted(n for n in dir(type(model)) if n.startswith("get_") and n.endswith("_features")
                                    and callable(getattr(model, n, None)))]
    for modality, spec in config.items():
        method = spec.get("method")
        if isinstance(method, str) and callable(getattr(model, method, None)):
            continue
        close = did_you_mean(str(method), available)
        raise ValueError(f"modality_config[{modality_str(modality)!r}]: {type(model).__name__} has no method "
                         f"{method!r}" + (f"; {close}" if close else "") + f" (available: {', '.join(available)})")


def modality_config_from_json(mc: Mapping[str, Any]) -> dict[Any, dict[str, Any]]:
    """Saved keys "image+text" → ("image", "text"); unknown modality names dropped with a warning."""
    out = {}
    for key, spec in mc.items():
        parts = str(key).split("+")
        if any(p not in MODALITIES for p in parts):
            logger.warning("Ignoring unknown modality key %r in modality_config", key)
            continue
        out[normalize_modality(parts)] = spec
    return out
