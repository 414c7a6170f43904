"""Turning raw inputs into model calls for ``Transformer`` (stateless helpers).

Per batch: the modality of each input (text, a text pair, image paths / PIL images / arrays, audio and
video dicts, ``{"image": …, "text": …}`` combinations, chat messages), the ``processing_kwargs`` merged
for the call, chat conversations for models with a chat template, the processor call itself, and on the
model side the features a method accepts and the ``method_output_name`` path into its output.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

from stpipe.contracts.transformer import CAUSAL_TASKS, PROCESSING_KEYS
from stpipe.modules.audio import (
    is_frames,
    looks_like_url,
    reconcile_video_metadata,
    refuse_url,
    unwrap_audio,
    unwrap_video,
)
from stpipe.modules.messages import MEDIA, is_conversation, is_media_pair, media_kinds
from stpipe.modules.modality import (
    IMAGE_SUFFIXES,  # noqa: F401  (re-exported)
    infer_modality,
    normalize_modality,
    unsupported_modality_error,
)

logger = logging.getLogger("stpipe.modules.transformer")  # the records keep the Transformer module's logger

PROCESSOR_ARG = {"text": "text", "image": "images", "audio": "audio", "video": "videos"}
BOOKKEEPING = {"modality", "task", "prompt_length", "num_images_per_sample", "num_videos_per_sample",
               "query_expansion_positions", "offset_mapping", "overflow_to_sample_mapping", "special_tokens_mask"}


# ------------------------------------------------------------------------------------ processing_kwargs
def check_processing_kwargs(pk: Any) -> dict[str, dict[str, Any]]:
    """``processing_kwargs`` as ``{key: dict}`` (unknown keys kept, with a warning); ValueError if malformed."""
    if pk is None:
        return {}
    if not isinstance(pk, Mapping) or not all(isinstance(v, Mapping) for v in pk.values()):
        raise ValueError("processing_kwargs must map 'common', 'text', 'image', 'audio', 'video' or "
                         f"'chat_template' to a dict of processor arguments, got {pk!r}")
    unknown = sorted(set(pk) - set(PROCESSING_KEYS))
    if unknown:
        logger.warning("processing_kwargs: unknown keys %s are ignored (valid: %s); nest processor arguments "
                       "under 'common' or a modality key", unknown, ", ".join(PROCESSING_KEYS))
    return {k: dict(v) for k, v in pk.items()}


def merge_processing_kwargs(instance: dict[str, dict[str, Any]], call: Any) -> dict[str, dict[str, Any]]:
    """The instance's ``processing_kwargs`` with a call's merged over them, key by key."""
    call = check_processing_kwargs(call)
    return {k: {**instance.get(k, {}), **call.get(k, {})} for k in {*instance, *call}}


# ------------------------------------------------------------------------------------ inputs
def _input_modality(x: Any, supported: set) -> Any:
    """An input's modality; a pair with a non-text half is a chat input (query / document turns)."""
    return "message" if is_media_pair(x) else infer_modality(x, list(supported))


def input_problem(x: Any, config: Mapping[Any, Any], processor_modalities: list[str], task: str) -> str | None:
    """Why a Transformer cannot take input ``x`` although its modality is configured (None when it can), said after
    "input <i>": media its processor has no sub-processor for, given to a chat-template model (the template drops
    them or renders them as text: silently, in sentence-transformers); media alone given to a causal model without
    a chat template (its processor makes no prompt tokens, and the model fails on missing ``input_ids``)."""
    if "message" in config:
        missing = [k for k in media_kinds(x, list(config)) if k not in processor_modalities]
        if not missing:
            return None
        kind, have = missing[0], ", ".join(processor_modalities) or "nothing"
        return (f"carries {kind}, but this Transformer's processor has no {kind} processor (it takes {have}): the "
                f"{kind} would never reach the model (its chat template drops it or renders it as text). Use a model "
                f"whose processor takes {kind}, or leave the {kind} out")
    if task not in CAUSAL_TASKS:
        return None
    try:
        modality = normalize_modality(infer_modality(x, list(config)))
    except (ValueError, TypeError):
        return None
    spec = config.get(modality)
    if modality not in MEDIA or not isinstance(spec, Mapping) or spec.get("method") != "forward":
        return None
    return (f"is {modality} alone, but this {task} model's processor has no chat template to put it into a prompt, "
            f"so the model would get no input_ids. Give the processor a chat template (processor_kwargs: "
            f"{{chat_template: ...}}), or pass the {modality} with its prompt text ({{'text': '... <the processor's "
            f"{modality} token> ...', '{modality}': ...}}) under a modality_config entry '{modality}+text'")


def _unwrap(x: Any, modality: str, extra: dict[str, dict[str, Any]]) -> Any:
    if isinstance(x, dict) and modality in x and len(x) == 1:
        x = x[modality]
    if isinstance(x, list) and modality == "text":
        x = tuple(x)
    if isinstance(x, tuple) and modality == "text" and (len(x) != 2 or not all(isinstance(s, str) for s in x)):
        raise ValueError(f"a text pair must be two strings, got {x!r}")
    if modality == "audio":
        return unwrap_audio(x, extra)
    if modality == "video":
        return unwrap_video(x, extra)
    if isinstance(x, str) and modality == "image":
        from transformers.image_utils import load_image

        if looks_like_url(x):
            raise ValueError(f"{x!r} is a URL; stpipe runs offline and does not download inputs: download the "
                             "image and pass its path (or a PIL image)")
        from stpipe.modules.image_limits import check_image_file

        check_image_file(x)  # the pixel limit, from the header, before load_image decodes it
        return load_image(x)
    return x


def parse_inputs(inputs: list[Any], config: Mapping[Any, Any], modality: Any = None
                  ) -> tuple[list[Any], Any, dict[str, Any]]:
    """(inputs ready for the processor, the batch's modality, extra processor kwargs by modality: an audio batch's
    ``{"audio": {"sampling_rate": …}}``, a video batch's ``{"video": {"video_metadata": [...]}}``)."""
    supported = set(config)
    mods = [normalize_modality(_input_modality(x, supported)) for x in inputs]
    if "message" in supported:  # a chat model: every batch goes through the chat template
        inputs, extra = chat_inputs(inputs, supported)
        return inputs, "message", extra
    distinct = set(mods)
    mod = distinct.pop() if len(distinct) == 1 else "message"  # a mixed batch, as sentence-transformers infers it
    if mod not in supported:
        raise unsupported_modality_error(mods, mod, list(config), "Transformer module")
    extra: dict[str, dict[str, Any]] = {}
    if isinstance(mod, tuple):
        inputs = [{m: _unwrap(x[m], m, extra) for m in mod} for x in inputs]
        videos = [x["video"] for x in inputs] if "video" in mod else []
    else:
        inputs = [_unwrap(x, mod, extra) for x in inputs]
        videos = inputs if mod == "video" else []
    reconcile_video_metadata(videos, extra)
    return inputs, mod, extra


def _items(kind: str, value: Any) -> list[Any]:
    if not isinstance(value, (list, tuple)) or (kind == "video" and is_frames(value)):
        return [value]
    return [list(v) if kind == "video" and isinstance(v, tuple) else v for v in value]


def to_messages(inputs: list[Any], prompt: str | None, fmt: str) -> list[list[dict[str, Any]]]:
    """Inputs (as :func:`chat_inputs` leaves them) → chat conversations: a text or a modality dict → a user turn,
    a pair → query/document turns, prompt → a leading system message. ``flat`` content is the value itself (a
    dict of several modalities falls back to typed items); ``structured`` content is typed items, a list value
    giving several items of its kind (a list of frames: one video)."""
    flat = fmt == "flat"

    def content(x: Any) -> Any:
        if isinstance(x, str):
            return x if flat else [{"type": "text", "text": x}]
        if isinstance(x, dict) and "array" not in x:
            if flat and len(x) == 1:
                return next(iter(x.values()))
            return [{"type": k, k: v} for k, vs in x.items() for v in _items(k, vs)]
        kind = normalize_modality(_input_modality(x, {"image", "audio", "video"}))
        return [{"type": kind, kind: x}]

    convs = []
    for x in inputs:
        if isinstance(x, dict) and "role" in x:
            conv = [x]
        elif isinstance(x, list) and x and isinstance(x[0], dict) and "role" in x[0]:
            conv = list(x)
        elif isinstance(x, (tuple, list)) and len(x) == 2:  # a pair: each half as given
            conv = [{"role": role, "content": half if flat else content(half)}
                    for role, half in zip(("query", "document"), x, strict=True)]
        else:
            conv = [{"role": "user", "content": content(x)}]
        if prompt:
            conv = [{"role": "system", "content": content(prompt)}, *conv]
        convs.append(conv)
    return convs


def chat_inputs(inputs: list[Any], supported: set) -> tuple[list[Any], dict[str, dict[str, Any]]]:
    """A chat batch as sentence-transformers prepares it: texts, pairs and conversations as given, every other input
    (an image file's path included; a URL is refused) as a dict of its modalities with audio / video unwrapped
    (``{array, sampling_rate}`` → the waveform, the rate to the audio kwargs; ``{array, video_metadata}`` → the
    frames, the metadata to the video kwargs, per video)."""
    extra: dict[str, dict[str, Any]] = {}
    out, videos = [], []
    for x in inputs:
        modality = "text" if is_conversation(x) or is_media_pair(x) else normalize_modality(
            infer_modality(x, list(supported)))
        if modality == "text":  # texts, text pairs, conversations and media pairs as given
            out.append(x)
            continue
        if isinstance(x, str):  # an image URL: the processor would download it
            refuse_url(x)
        if isinstance(modality, tuple):
            typed = dict(x)  # the caller's key order
        else:
            typed = {modality: x[modality] if isinstance(x, dict) and list(x) == [modality] else x}
        if "audio" in typed:
            typed["audio"] = unwrap_audio(typed["audio"], extra)
        if "video" in typed:
            typed["video"] = unwrap_video(typed["video"], extra)
            videos.append(typed["video"])
        out.append(typed)
    reconcile_video_metadata(videos, extra)
    return out, extra


def call_processor(processor: Any, columns: dict[Any, list[Any]], call: dict[str, Any]) -> Any:
    from transformers import ProcessorMixin

    multi = isinstance(processor, ProcessorMixin)
    if list(columns) == ["text"]:
        texts = columns["text"]
        if any(isinstance(t, tuple) for t in texts):  # text pairs, possibly mixed with single texts
            tok = getattr(processor, "tokenizer", processor)
            return tok(list(texts), **call)
        return processor(text=texts, **call) if multi else processor(texts, **call)
    if multi:
        return processor(**{PROCESSOR_ARG[m]: v for m, v in columns.items()}, **call)
    ((_, values),) = columns.items()
    return processor(values, **call)


# ------------------------------------------------------------------------------------ model calls
def method_inputs(method: Any, features: Mapping[str, Any]) -> dict[str, Any]:
    """The features ``method`` accepts (all but bookkeeping keys when it takes ``**kwargs``)."""
    params = inspect.signature(method).parameters
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if var_kw:
        call = {k: v for k, v in features.items() if k not in BOOKKEEPING or k in params}
    else:
        call = {k: v for k, v in features.items() if k in params}
    if var_kw or "return_dict" in params:
        call["return_dict"] = True
    return call


def extract_output(output: Any, path: Any) -> Any:
    """Follow ``method_output_name`` (a key/attribute name, or a list of them) into a model output."""
    for part in [] if path is None else [path] if isinstance(path, (str, int)) else list(path):
        if isinstance(output, Mapping) and part in output:
            output = output[part]
        elif isinstance(part, int):
            output = output[part]
        else:
            output = getattr(output, part)
    return output
