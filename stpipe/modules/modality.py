"""Modality of an input: ``str`` → text, PIL image → image, ``{"text": …, "image": …}`` → ("image", "text").

>>> infer_modality("a cat")
'text'
>>> infer_modality({"text": "a cat", "image": None, })
('image', 'text')
>>> normalize_modality(["text", "image"])
('image', 'text')
>>> check_modality("image+text"), check_modality(["text"])
(('image', 'text'), 'text')
"""

from __future__ import annotations

import sys
from typing import Any

from stpipe.contracts.modality import MODALITIES, Modality, check_modality, modality_str, normalize_modality

__all__ = ["MODALITIES", "Modality", "check_modality", "modality_str", "normalize_modality"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def is_image_path(x: Any) -> bool:
    """A string a Transformer with an image processor takes as an image: a ``data:image/`` URI, an image URL or an
    existing image file."""
    from stpipe.modules.audio import is_media_source

    return isinstance(x, str) and (x.startswith("data:image/") or is_media_source(x, IMAGE_SUFFIXES))


def _is_image(x: Any) -> bool:
    try:
        from PIL.Image import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        return False
    return isinstance(x, Image)


def _array_modality(x: Any) -> Modality | None:
    """audio (1–2 dimensions), image (3), video (4–5) for a numpy array or torch tensor; None for other types."""
    import numpy as np

    torch = sys.modules.get("torch")
    if not isinstance(x, np.ndarray) and not (torch is not None and isinstance(x, torch.Tensor)):
        return None
    kind = {1: "audio", 2: "audio", 3: "image", 4: "video", 5: "video"}.get(x.ndim)
    if kind is None:
        raise ValueError(f"Unsupported tensor dimensionality: {x.ndim}D. Expected 1-2D for audio, 3D for image, or "
                         "4-5D for video.")
    return kind


def _dict_modality(x: dict) -> Modality:
    if "role" in x and "content" in x:
        return "message"
    if "array" in x:
        if "sampling_rate" in x:
            return "audio"
        if "video_metadata" in x:
            return "video"
        raise ValueError("Dict input with 'array' key must also include 'sampling_rate' (for audio) or "
                         f"'video_metadata' (for video). Got keys: {sorted(map(str, x))}")
    if not x:
        raise ValueError("an empty dict is not a valid input")
    unknown = [k for k in x if k not in MODALITIES[:4]]
    if unknown:
        hints = []
        if "video_metadata" in unknown:
            hints.append('attach video metadata to the video itself: {"video": {"array": frames, "video_metadata": '
                         '{...}}}')
        if "sampling_rate" in unknown:
            hints.append('attach the sampling rate to the audio itself: {"audio": {"array": waveform, '
                         '"sampling_rate": 16000}}')
        raise ValueError(f"input dict has keys {unknown} that are not modalities; use keys among "
                         f"{list(MODALITIES[:4])}" + "".join(f"; {h}" for h in hints))
    return normalize_modality(list(x))  # type: ignore[return-value]


def infer_modality(x: Any, supported: list[Modality] | None = None) -> Modality:
    """Modality of one input, in sentence-transformers' order: a PIL image; a torchcodec decoder; a string that is
    an image, video or audio URL / existing file (that kind only when ``supported`` includes it, else text: a
    string is text when ``supported`` is None); a text or a text pair; a chat message (a role/content dict, or a
    list starting with one); an audio / video dict (``array`` + ``sampling_rate`` / ``video_metadata``); a dict
    of modalities (one key → that modality, several → a sorted tuple); a numpy array or tensor by its number of
    dimensions. ValueError for anything else."""
    from stpipe.modules.audio import decoder_kind, is_audio_source, is_video_source

    if _is_image(x):
        return "image"
    kind = decoder_kind(x)
    if kind is not None:
        return kind
    if isinstance(x, str):
        for media, test in (("image", is_image_path), ("video", is_video_source), ("audio", is_audio_source)):
            if test(x):
                return media if supported is not None and media in supported else "text"
        return "text"
    if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(i, str) for i in x):
        return "text"  # a text pair
    if isinstance(x, dict):
        return _dict_modality(x)
    if isinstance(x, list) and x and isinstance(x[0], dict) and "role" in x[0] and "content" in x[0]:
        return "message"
    kind = _array_modality(x)
    if kind is not None:
        return kind
    raise ValueError(f"cannot infer the modality of an input of type {type(x).__name__}; expected a str, a dict, a "
                     "PIL image, a numpy array or a torch tensor")


def infer_batch_modality(inputs: list[Any], supported: list[Modality] | None = None) -> Modality:
    """One modality for a whole batch; a mixed batch is 'message' (as sentence-transformers)."""
    mods = {infer_modality(x, supported) for x in inputs}
    if len(mods) == 1:
        return mods.pop()
    return "message"


def text_inputs(inputs: list[Any], prompt: str | None, owner: str) -> list[str | tuple[str, str]]:
    """Texts and text pairs for a text-only input module: a pair (a tuple or a two-element list of strings) becomes
    a tuple, which tokenizers encode as a pair; ``prompt`` goes before each text (before a pair's first text, as
    sentence-transformers prepends it). TypeError for anything else."""
    out: list[str | tuple[str, str]] = []
    for x in inputs:
        if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(s, str) for s in x):
            out.append((prompt + x[0], x[1]) if prompt else (x[0], x[1]))
        elif isinstance(x, str):
            out.append(prompt + x if prompt else x)
        else:
            raise TypeError(f"{owner} takes text only (strings, or text pairs of two strings), got "
                            f"{type(x).__name__}" + (f" of length {len(x)}" if isinstance(x, (tuple, list)) else ""))
    return out


# ---------------------------------------------------------------------------------------------- errors
def sample_modalities(inputs: list[Any], image_paths: bool = False) -> list[Modality | None]:
    """:func:`infer_modality` of each input, None where it cannot be inferred; with ``image_paths``, strings
    that :func:`is_image_path` are images."""
    out: list[Modality | None] = []
    for x in inputs:
        try:
            out.append("image" if image_paths and is_image_path(x) else infer_modality(x))
        except (ValueError, TypeError):
            out.append(None)
    return out


def _labels(modalities: Any) -> str:
    return ", ".join(str(modality_str(m)) for m in modalities)


def unsupported_modality_error(samples: list[Modality | None] | None, modality: Modality,
                               supported: list[Modality], source: str) -> ValueError:
    """Why ``source`` (e.g. "SentenceTransformer model") cannot take a batch of ``modality``, in sentence-transformers'
    words. ``samples`` (the modality of each input, None where unknown) tells a mixed batch, which infers as
    'message', from chat-style inputs."""
    supported_str = _labels(supported)
    present = {m for m in samples or [] if m is not None}
    if modality == "message" and samples is not None and None not in samples and present:
        if present == {"message"}:
            return ValueError(f"This {source} does not support chat-style 'message' inputs (dicts or lists of dicts "
                              f"with 'role' and 'content'). Supported modalities: {supported_str}.")
        if "message" in present:
            return ValueError(f"This {source} does not support chat-style 'message' inputs (dicts or lists of dicts "
                              "with 'role' and 'content'), which this batch mixes with other modalities. Supported "
                              f"modalities: {supported_str}.")
        mixed = _labels(sorted(present, key=lambda m: str(modality_str(m))))
        parts = {p for m in present for p in (m if isinstance(m, tuple) else (m,))}
        missing = sorted(p for p in parts if p not in supported)
        if missing:
            return ValueError(f"This batch mixes multiple modalities ({mixed}), but this {source} does not support "
                              f"{', '.join(missing)}. Supported modalities: {supported_str}.")
        return ValueError(f"This batch mixes multiple modalities ({mixed}), which this {source} cannot encode in a "
                          "single batch. Encode each modality separately (one call per modality).")
    if isinstance(modality, tuple) and all(m in supported for m in modality):
        return ValueError(f"This {source} supports {' and '.join(modality)} individually, but cannot combine them "
                          "in a single input. Encode each modality separately (one call per modality).")
    return ValueError(f"Modality '{modality_str(modality)}' is not supported by this {source}. Supported "
                      f"modalities: {supported_str}.")


def modality_mismatch_error(given: Modality, samples: list[Modality | None]) -> ValueError | None:
    """The error for an explicit ``modality=`` that the inputs do not have (None when they agree, or when no input's
    modality is known). ``'message'`` matches anything: every input can be wrapped into a chat message."""
    if given == "message":
        return None
    known = [m for m in samples if m is not None]
    other = sorted({m for m in known if m != given}, key=lambda m: str(modality_str(m)))
    if not other:
        return None
    found = (f"the inputs are {modality_str(other[0])}" if len(set(known)) == 1
             else f"the inputs include {_labels(other)}")
    hint = f"pass modality={modality_str(other[0])!r}, or " if len(set(known)) == 1 else ""
    return ValueError(f"modality={modality_str(given)!r} was given, but {found}; {hint}leave modality unset to "
                      "infer it from the inputs.")


def supports(modality: Modality, supported: list[Modality]) -> bool:
    """Whether a module listing ``supported`` takes ``modality`` (a combination also via ``message`` support)."""
    if modality in supported:
        return True
    return isinstance(modality, tuple) and "message" in supported and all(m in supported for m in modality)


def check_batch_modality(inputs: list[Any], modality: Any, supported: list[Modality], source: str) -> None:
    """ValueError when ``source`` cannot take this batch: the modality inferred from the inputs is not supported
    (sentence-transformers' messages), or an explicit ``modality`` is invalid, not supported, or not what the
    inputs are (instead of letting the model fail on inputs of another kind)."""
    samples = sample_modalities(inputs)
    try:
        inferred: Modality | None = infer_batch_modality(inputs, supported)
    except (ValueError, TypeError):
        inferred = None
    if inferred is not None and not supports(inferred, supported):
        raise unsupported_modality_error(samples, inferred, supported, source)
    given = check_modality(modality)
    if given is None:
        return
    if not supports(given, supported):
        raise unsupported_modality_error(None, given, supported, source)
    parts = given if isinstance(given, tuple) else (given,)
    error = modality_mismatch_error(given, sample_modalities(inputs, image_paths="image" in parts))
    if error is not None:
        raise error
