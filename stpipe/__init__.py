"""stpipe — embedding models declared in YAML, validated before any weight loads.

Public API (imported lazily, so ``import stpipe`` stays cheap)::

    import stpipe
    pipe = stpipe.build("conf/model/minilm.yaml")      # YAML path or dict → validated → Pipeline
    pipe = stpipe.load("path/to/saved/model")          # sentence-transformers format → Pipeline
    stpipe.validate({"modules": [...]})                 # raises ConfigError listing every problem
    stpipe.train(pipe, data=…, loss="cosent", output_dir="out")   # fine-tune (README "Training")

Writing a module of your own (``stpipe.Module``, ``stpipe.InputModule``, ``stpipe.FeatureIO``,
``stpipe.register`` or the ``stpipe.modules`` entry-point group): see ``docs/plugins.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "build": "stpipe.builder:build",
    "load": "stpipe.builder:load",
    "validate": "stpipe.config.validate:validate",
    "Pipeline": "stpipe.pipeline:Pipeline",
    "CrossEncoder": "stpipe.cross_encoder:CrossEncoder",
    "ConfigError": "stpipe.errors:ConfigError",
    "LoadError": "stpipe.errors:LoadError",
    "StpipeError": "stpipe.errors:StpipeError",
    "Problem": "stpipe.errors:Problem",
    "RouteError": "stpipe.errors:RouteError",
    "register": "stpipe.registry:register",
    "train": "stpipe.training:train",
    # the plugin API (docs/plugins.md): the module contract and its static description
    "Module": "stpipe.modules.module:Module",
    "InputModule": "stpipe.modules.module:InputModule",
    "FeatureIO": "stpipe.contracts.base:FeatureIO",
    "Contract": "stpipe.contracts.base:Contract",
}

__all__ = ["build", "load", "validate", "Pipeline", "CrossEncoder", "ConfigError", "LoadError", "StpipeError",
           "Problem", "RouteError", "register", "train", "Module", "InputModule", "FeatureIO", "Contract",
           "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from stpipe.builder import build, load
    from stpipe.config.validate import validate
    from stpipe.contracts.base import Contract, FeatureIO
    from stpipe.cross_encoder import CrossEncoder
    from stpipe.errors import ConfigError, LoadError, Problem, RouteError, StpipeError
    from stpipe.modules.module import InputModule, Module
    from stpipe.pipeline import Pipeline
    from stpipe.registry import register
    from stpipe.training import train


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'stpipe' has no attribute '{name}'")
    import importlib

    mod, _, attr = target.partition(":")
    value = getattr(importlib.import_module(mod), attr)
    globals()[name] = value
    return value
