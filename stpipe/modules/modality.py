"""Modality of an input: ``str`` → text, PIL image → image, ``{"text": …, "image": …}`` → ("image", "text").

>>> infer_modality("a cat")
'text'
>>> infer_modality({"text": "a cat", "image": None, })
('image', 'text')
>>> normalize_modality(["text", "image"])
('image', 'text')
"""

from __future__ import annotations

from typing import Any

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


def modality_str(modality: Modality | None) -> str | None:
    """('image', 'text') → 'image+text' (the on-disk form of modality_config keys)."""
    if modality is None or isinstance(modality, str):
        return modality
    return "+".join(modality)


def _is_image(x: Any) -> bool:
    try:
        from PIL.Image import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        return False
    return isinstance(x, Image)


def infer_modality(x: Any) -> Modality:
    """Modality of one input; ValueError for a value stpipe cannot classify."""
    if isinstance(x, str):
        return "text"
    if _is_image(x):
        return "image"
    if isinstance(x, (tuple, list)) and x and all(isinstance(i, str) for i in x):
        return "text"  # a text pair
    if isinstance(x, dict):
        if not x:
            raise ValueError("an empty dict is not a valid input")
        if "role" in x and "content" in x:
            return "message"
        unknown = [k for k in x if k not in MODALITIES[:4]]
        if unknown:
            raise ValueError(f"input dict has keys {unknown} that are not modalities; use keys among "
                             f"{list(MODALITIES[:4])}")
        return normalize_modality(list(x))  # type: ignore[return-value]
    if isinstance(x, list) and x and isinstance(x[0], dict) and "role" in x[0]:
        return "message"
    raise ValueError(f"cannot infer the modality of an input of type {type(x).__name__}")


def infer_batch_modality(inputs: list[Any]) -> Modality:
    """One modality for a whole batch; a mixed batch is 'message' (as sentence-transformers)."""
    mods = {infer_modality(x) for x in inputs}
    if len(mods) == 1:
        return mods.pop()
    return "message"
