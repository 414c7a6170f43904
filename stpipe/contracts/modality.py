"""Modality names and their normal form (torch-free): what a Router mapping, a ``modality_config`` key and an
explicit ``modality=`` argument may say. :mod:`stpipe.modules.modality` (inferring the modality of inputs) and
validation both use these.

>>> normalize_modality(["text", "image"])
('image', 'text')
>>> check_modality("image+text"), check_modality(["text"])
(('image', 'text'), 'text')
"""

from __future__ import annotations

from typing import Any

from stpipe.errors import did_you_mean

MODALITIES = ("text", "image", "audio", "video", "message")
Modality = str | tuple[str, ...]


def normalize_modality(modality: Any) -> Modality | None:
    """A list/tuple of modalities becomes a sorted tuple (order-insensitive); one element collapses to a str."""
    if modality is None:
        return None
    if isinstance(modality, str):
        if "+" in modality:
            return normalize_modality(modality.split("+"))
        return modality
    items = tuple(sorted(str(m) for m in modality))
    return items[0] if len(items) == 1 else items


def check_modality(modality: Any) -> Modality | None:
    """An explicit ``modality=`` argument, normalised; ValueError unless it is None, a known modality name, an
    ``'a+b'`` combination or a list/tuple of names (``"message"`` only alone)."""
    if modality is None:
        return None
    parts = modality.split("+") if isinstance(modality, str) else modality
    valid = isinstance(parts, (list, tuple)) and bool(parts) and all(isinstance(m, str) for m in parts)
    bad = [m for m in parts if m not in MODALITIES] if valid else []
    combined = valid and len(parts) > 1
    if valid and not bad and (not combined or ("message" not in parts and len(set(parts)) == len(parts))):
        return normalize_modality(list(parts))
    close = did_you_mean(bad[0], MODALITIES) if len(bad) == 1 else None
    raise ValueError(f"modality={modality!r} is not a valid modality: give one of {', '.join(map(repr, MODALITIES))}, "
                     "a combination such as 'image+text' or ['image', 'text'] (each name once; 'message' only "
                     "alone), or None to infer it from the inputs" + (f" ({close})" if close else ""))


def modality_str(modality: Modality | None) -> str | None:
    """('image', 'text') → 'image+text' (the on-disk form of modality_config keys)."""
    if modality is None or isinstance(modality, str):
        return modality
    return "+".join(modality)
