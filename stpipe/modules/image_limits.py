"""An explicit pixel limit for image files, checked from the file's header before any pixel is decoded.

A small file can declare a huge image (a 516 KB PNG of 13300×13300 pixels decodes to 530 MB, and a batch of them
to gigabytes). Every image stpipe reads from a path — an input ``"cat.png"``, a ``{"text", "image"}`` record, an
image line of ``stpipe encode``'s inputs — is opened lazily (PIL reads the header only) and refused when its
width × height is above the limit: ``max_image_pixels`` (run setting; default 50 megapixels, below PIL's own warning
level of ~89 MP), or :func:`set_max_image_pixels` for the Python API. PIL's decompression-bomb check (twice its
``Image.MAX_IMAGE_PIXELS``) still applies on top and is reported the same way, never as a raw
``DecompressionBombError``. Images the caller passes already decoded (PIL images, arrays) are the caller's.

>>> max_image_pixels()
50000000
"""

from __future__ import annotations

import re
import warnings
from typing import Any

#: the default of the run setting ``max_image_pixels`` (conf/config.yaml says the same)
DEFAULT_MAX_PIXELS = 50_000_000
_limit: list[int | None] = [DEFAULT_MAX_PIXELS]


def max_image_pixels() -> int | None:
    """The limit in force (None: no limit of stpipe's own; PIL's still applies)."""
    return _limit[0]


def set_max_image_pixels(pixels: int | None) -> None:
    """Set the limit for this process (the CLI applies the run setting ``max_image_pixels``)."""
    if pixels is not None and (isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 1):
        raise ValueError(f"max_image_pixels must be a positive integer or None, got {pixels!r}")
    _limit[0] = pixels


def _too_large(declared: str) -> ValueError:
    return ValueError(f"the image declares {declared}, more than max_image_pixels={_limit[0]:,} — refused before "
                      "decoding (a small file can declare a huge image). Resize it, or raise the limit "
                      "(max_image_pixels=N on the command line; stpipe.modules.image_limits.set_max_image_pixels)")


def check_image_file(path: Any) -> None:
    """ValueError when the image file at ``path`` declares more pixels than the limit (or than PIL accepts).
    Reads the header only; a file PIL cannot open is left to the loader, which says why."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        declared = f"{int(found.group(1)):,} pixels" if found else "more pixels than PIL accepts"
        raise _too_large(declared) from None
    except (OSError, ValueError, TypeError):
        return
    if _limit[0] is not None and width * height > _limit[0]:
        raise _too_large(f"{width}×{height} = {width * height:,} pixels")


def open_rgb(path: Any) -> Any:
    """The image file decoded as RGB, after :func:`check_image_file`."""
    from PIL import Image

    check_image_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            return im.convert("RGB")
