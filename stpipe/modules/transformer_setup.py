"""Building a ``Transformer``: parameter checks, model and processor loading.

Stateless helpers of :mod:`stpipe.modules.transformer`: dtype names from YAML, security settings a saved config
may not carry, loading the model (the class is chosen by :mod:`stpipe.modules.transformer_classes`: the encoder
alone for T5-like models under ``feature-extraction``) and its processor. The ``modality_config`` helpers live in
:mod:`stpipe.modules.transformer_modalities` (re-exported here); the tasks, dtype names and the weight-free
description of a node in :mod:`stpipe.contracts.transformer` (re-exported here).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from stpipe.contracts.transformer import (  # noqa: F401 - re-exported
    BACKENDS,
    DTYPE_NAMES,
    DUAL_ENCODERS,
    NOT_YET,
    TASKS,
    describe_output,
    dimension_from_config,
)
from stpipe.errors import LoadError, did_you_mean
from stpipe.modules.transformer_classes import encoder_class, load_encoder, model_class
from stpipe.modules.transformer_modalities import (  # noqa: F401 - re-exported (their home before the split)
    check_methods,
    check_modality_config,
    has_chat_template,
    infer_modality_config,
    is_tokenizer,
    modality_config_from_json,
    processor_modalities,
    returns_field,
)
from stpipe.resources import local_model

logger = logging.getLogger("stpipe.modules.transformer")  # the records keep the Transformer module's logger

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


# ------------------------------------------------------------------------------------ loading
#: Hugging Face loader arguments that switch on code execution or pickle loading: only the caller sets them
#: (trust_remote_code / allow_pickle), never a file being loaded
SECURITY_KWARGS = ("trust_remote_code", "use_safetensors")


def strip_security_kwargs(saved: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``saved`` (a Transformer's saved config) without :data:`SECURITY_KWARGS` in its model/processor/config
    kwargs: security settings come from the caller, never from the files being loaded."""
    for key in ("model_kwargs", "processor_kwargs", "config_kwargs"):
        kwargs = saved.get(key)
        if not isinstance(kwargs, dict):
            continue
        dropped = [k for k in SECURITY_KWARGS if k in kwargs]
        if dropped:
            logger.warning("%signoring %s saved in %s: security settings come from the caller (trust_remote_code, "
                           "allow_pickle), not from the model's files", f"{where}: " if where else "",
                           ", ".join(dropped), key)
            saved[key] = {k: v for k, v in kwargs.items() if k not in SECURITY_KWARGS}
    return saved


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
    cls = model_class(config, transformer_task, auto_name)  # the encoder alone for T5-like feature-extraction
    model_kwargs = refuse_pickle(model_name_or_path, model_kwargs)
    try:
        if encoder_class(config, transformer_task) is not None:
            return load_encoder(cls, model_name_or_path, config, model_kwargs)
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
