"""Torch-free facts about a whole pipeline definition and its saved folder, read by config, formats, builder and
runtime alike so they cannot drift (issue 18: one source per rule).

>>> MODULES_JSON, ROUTER_CONFIG, EXPORT_MANIFEST
('modules.json', 'router_config.json', 'stpipe_export.json')
"""

from __future__ import annotations

#: the list of modules of a saved sentence-transformers folder
MODULES_JSON = "modules.json"
#: a saved Router's configuration (its routes, their module types and folders)
ROUTER_CONFIG = "router_config.json"
#: the manifest of a graph export (``stpipe export … format=onnx|openvino``)
EXPORT_MANIFEST = "stpipe_export.json"
#: sentence-transformers' model-level config (prompts, similarity function, versions)
ST_CONFIG = "config_sentence_transformers.json"
