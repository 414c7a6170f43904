"""The ``GraphEncoder`` contract: one route of a graph export (``stpipe export … format=onnx|openvino``).

A node ``{type: GraphEncoder, export_dir: DIR, route: ""}`` is what ``stpipe import DIR`` / ``stpipe encode DIR``
make of an export (a Router of them for a Router model); it reads raw texts and writes ``sentence_embedding``, whose
width the export's manifest (``stpipe_export.json``) records — read here as plain JSON, so validation loads no
runtime.

>>> GRAPH_ENCODER.describe({"export_dir": "/nowhere"}, {}).produces
{'sentence_embedding': None}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stpipe.contracts.base import Contract, FeatureIO
from stpipe.contracts.pipeline import EXPORT_MANIFEST

PARAMS = ("export_dir", "route", "provider", "threads")
MANIFEST = EXPORT_MANIFEST  # the manifest file of a graph export


def manifest_dimension(export_dir: Any, route: Any) -> int | None:
    """The embedding width the manifest records for ``route`` (None when the manifest cannot say)."""
    try:
        entry = json.loads(Path(str(export_dir), MANIFEST).read_text(encoding="utf-8"))["routes"][route or ""]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    dim = entry.get("dimension") if isinstance(entry, dict) else None
    return dim if isinstance(dim, int) else None


def describe(params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
    """Texts in, ``sentence_embedding`` out (the graph holds the whole route: Transformer → … → Normalize)."""
    return FeatureIO(produces={"sentence_embedding": manifest_dimension(params.get("export_dir"),
                                                                        params.get("route"))})


GRAPH_ENCODER = Contract(name="GraphEncoder", describe=describe, params=PARAMS, is_input=True,
                         config_keys=PARAMS)
