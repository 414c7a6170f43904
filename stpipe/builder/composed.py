"""A composed run (:class:`stpipe.config.compose.Composed`: definition + run settings) → a built Pipeline.

Every front end that starts from the command line's composition — the CLI verbs, ``stpipe serve`` and its Ray
replicas — comes through :func:`build_composed`, so the run settings that shape the process (``threads``,
``max_image_pixels``) and the loading policy (``device``, ``trust_remote_code``, ``allow_pickle``) are applied in
one place.
"""

from __future__ import annotations

from typing import Any

from stpipe.builder.entry import build


def apply_limits(run: Any) -> None:
    """The run settings that bound small hostile inputs, applied to this process (``max_image_pixels``)."""
    from stpipe.modules.image_limits import DEFAULT_MAX_PIXELS, set_max_image_pixels

    set_max_image_pixels(run.get("max_image_pixels", DEFAULT_MAX_PIXELS))


def apply_threads(threads: int | None) -> int:
    """The ``threads`` run setting applied to torch (``torch.set_num_threads``; null leaves torch's default);
    returns torch's thread count. Other runtimes read :func:`stpipe.hardware.resolved_threads`."""
    import torch

    from stpipe.hardware import resolved_threads

    n = resolved_threads(threads)
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def build_composed(composed: Any) -> Any:
    """Validate and build the composed definition with the run settings' device and loading policy."""
    from transformers.utils import logging as hf_logging

    from stpipe.config.validate import validate

    hf_logging.disable_progress_bar()  # the CLI prints its own one-line summary
    apply_threads(composed.run.get("threads"))
    apply_limits(composed.run)
    definition = validate(composed.definition, sources=composed.sources, base_dir=composed.base_dir)
    run = composed.run
    return build(definition, validate=False, base_dir=composed.base_dir, device=run.get("device"),
                 trust_remote_code=run.get("trust_remote_code") or None, allow_pickle=bool(run.get("allow_pickle")))


__all__ = ["apply_limits", "apply_threads", "build_composed"]
