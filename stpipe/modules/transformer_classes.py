"""Which ``transformers`` class a ``Transformer`` loads for its task and config (the one home of that rule).

``feature-extraction`` on an encoder–decoder architecture loads its encoder alone, as sentence-transformers 6.2
does: ``T5EncoderModel``, ``MT5EncoderModel``, ``PegasusEncoder``, ``WhisperEncoder`` … (:data:`ENCODER_CLASSES`,
keyed by ``model_type``). The rule holds whatever the config says about ``is_encoder_decoder``, so a saved encoder
(``architectures: [T5EncoderModel]``, ``is_encoder_decoder: false``) reloads as the encoder, never as the whole
seq2seq model with a freshly initialised decoder. Every other task, and every other architecture, loads the
task's Auto class (``AutoModel``, ``AutoModelForMaskedLM`` …).

Where an encoder class cannot read a full seq2seq checkpoint (``PegasusEncoder`` expects ``layers.…``, the
checkpoint stores ``encoder.layers.…`` / ``model.encoder.layers.…``), sentence-transformers 6.2 leaves the encoder
at its random initialisation. stpipe loads the whole model instead and keeps its trained encoder
(:func:`load_encoder`); saved, that encoder reloads directly in both libraries.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

logger = logging.getLogger("stpipe.modules.transformer")

#: model_type → (module, encoder class) loaded for ``feature-extraction`` (sentence-transformers 6.2's list)
ENCODER_CLASSES: dict[str, tuple[str, str]] = {
    "t5": ("transformers", "T5EncoderModel"),
    "mt5": ("transformers", "MT5EncoderModel"),
    "umt5": ("transformers", "UMT5EncoderModel"),
    "udop": ("transformers", "UdopEncoderModel"),
    "longt5": ("transformers", "LongT5EncoderModel"),
    "prophetnet": ("transformers", "ProphetNetEncoder"),
    "switch_transformers": ("transformers", "SwitchTransformersEncoderModel"),
    "t5gemma": ("transformers", "T5GemmaEncoderModel"),
    "blenderbot": ("transformers.models.blenderbot.modeling_blenderbot", "BlenderbotEncoder"),
    "blenderbot-small": ("transformers.models.blenderbot_small.modeling_blenderbot_small", "BlenderbotSmallEncoder"),
    "m2m_100": ("transformers.models.m2m_100.modeling_m2m_100", "M2M100Encoder"),
    "pegasus": ("transformers.models.pegasus.modeling_pegasus", "PegasusEncoder"),
    "pegasus_x": ("transformers.models.pegasus_x.modeling_pegasus_x", "PegasusXEncoder"),
    "moonshine": ("transformers.models.moonshine.modeling_moonshine", "MoonshineEncoder"),
    "whisper": ("transformers.models.whisper.modeling_whisper", "WhisperEncoder"),
    "marian": ("transformers.models.marian.modeling_marian", "MarianEncoder"),
}
#: the encoder classes that read a whole seq2seq checkpoint themselves (their weights keep the ``encoder.`` names
#: of the whole model); the others read only a saved encoder
READS_WHOLE_CHECKPOINT = {"T5EncoderModel", "MT5EncoderModel", "UMT5EncoderModel", "UdopEncoderModel",
                          "LongT5EncoderModel", "SwitchTransformersEncoderModel", "T5GemmaEncoderModel"}


def encoder_class(config: Any, transformer_task: str) -> type | None:
    """The encoder class ``feature-extraction`` loads for ``config``'s model type; None for the task's Auto class."""
    if transformer_task != "feature-extraction":
        return None
    entry = ENCODER_CLASSES.get(getattr(config, "model_type", ""))
    if entry is None:
        return None
    try:
        return getattr(importlib.import_module(entry[0]), entry[1])
    except (ImportError, AttributeError):  # an older transformers without this architecture
        return None


def model_class(config: Any, transformer_task: str, auto_name: str) -> type:
    """The class ``from_pretrained`` is called on: the encoder class, else the task's Auto class."""
    import transformers

    return encoder_class(config, transformer_task) or getattr(transformers, auto_name)


def prepare_encoder_config(config: Any) -> Any:
    """T5Gemma's encoder reads ``is_encoder_decoder = False`` (sentence-transformers sets it too)."""
    if getattr(config, "model_type", None) == "t5gemma":
        config.is_encoder_decoder = False
    return config


def load_encoder(cls: type, path: str, config: Any, model_kwargs: dict[str, Any]) -> Any:
    """``cls`` (an encoder class) from ``path``: directly for a saved encoder (``architectures`` names ``cls``) and
    for the T5 family (:data:`READS_WHOLE_CHECKPOINT`), else the encoder of the whole model ``AutoModel`` loads —
    so its weights are the checkpoint's, never a random initialisation."""
    import transformers

    prepare_encoder_config(config)
    if cls.__name__ in READS_WHOLE_CHECKPOINT or cls.__name__ in (getattr(config, "architectures", None) or []):
        return cls.from_pretrained(path, config=config, **model_kwargs)
    whole = transformers.AutoModel.from_pretrained(path, config=config, **model_kwargs)
    encoder = find_encoder(whole, cls)
    if encoder is None:  # pragma: no cover - every class of ENCODER_CLASSES is found in its whole model
        raise ValueError(f"{type(whole).__name__} has no {cls.__name__} to load as the encoder")
    return encoder


def find_encoder(model: Any, cls: type) -> Any:
    """The submodule of ``model`` that is a ``cls`` (its encoder), or None."""
    found = model.get_encoder() if hasattr(model, "get_encoder") else None
    if isinstance(found, cls):
        return found
    return next((m for m in model.modules() if isinstance(m, cls)), None)
