"""A ``Transformer``'s ``modality_config``: checked when given, inferred from the model and processor otherwise.

Stateless helpers of :mod:`stpipe.modules.transformer` (split from :mod:`stpipe.modules.transformer_setup`):
what a processor handles (text, image, audio, video, a chat template), the ``modality_config`` a model implies
(``forward`` or one ``get_<modality>_features`` method per modality for dual encoders such as CLIP), its checks,
and the saved form (``"image+text"`` keys ↔ tuples).
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Mapping
from typing import Any

import torch

from stpipe.contracts.modality_edge_cases import edge_case
from stpipe.contracts.transformer import TASKS
from stpipe.errors import did_you_mean
from stpipe.modules.messages import message_entry
from stpipe.modules.modality import MODALITIES, modality_str, normalize_modality

logger = logging.getLogger("stpipe.modules.transformer")  # the records keep the Transformer module's logger


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
