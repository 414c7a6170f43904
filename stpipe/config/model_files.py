"""Moved to :mod:`stpipe.formats.model_files` (issue 18: reading a saved folder is the codec's); the names stay
importable from here for config/graph.py and its tests until their owners import the new home."""

from stpipe.formats.model_files import (  # noqa: F401 - re-exported
    PADDING_OFFSET_TYPES,
    GraphContext,
    Saved,
    max_positions,
    saved_config,
    saved_params,
    shape_conflicts,
    tensor_shapes,
)
