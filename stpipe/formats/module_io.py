"""Load one saved module by its type reference — shared by ``modules.json`` and ``router_config.json``.

The type reference is resolved through the registry only. A reference outside the registry is custom
code: it is refused unless ``trust_remote_code=True``, and even then only classes that were registered
(``stpipe.register``) or declared through the ``stpipe.modules`` entry-point group can be used — stpipe
never imports a module named by a file on disk.
"""

from __future__ import annotations

import inspect
from typing import Any

from stpipe import registry
from stpipe.config.errors import ConfigError, LoadError
from stpipe.modules.module import Module, check_relative

#: loader keyword arguments every module's ``load`` receives (modules ignore what they do not use)
LOADER_KEYS = ("token", "cache_folder", "revision", "local_files_only", "trust_remote_code", "allow_pickle",
               "model_kwargs", "processor_kwargs", "config_kwargs", "backend")


def resolve_type(type_ref: str, *, where: str, trust_remote_code: bool = False) -> type[Module]:
    """Class for a saved type reference, with a LoadError naming the file when it is unknown."""
    spec = registry.find(type_ref)
    if spec is None:
        if not type_ref.startswith("sentence_transformers.") and not trust_remote_code:
            raise LoadError(f"module type '{type_ref}' is custom code and trust_remote_code is off", path=where,
                            hint="pass trust_remote_code=True and register the class (stpipe.register) if you "
                                 "trust it")
        try:
            registry.spec(type_ref)
        except ConfigError as exc:
            raise LoadError(exc.problems[0].message, path=where, hint=exc.problems[0].hint) from None
    return spec.cls  # type: ignore[union-attr]


def load_module(type_ref: str, model_path: str, subfolder: str = "", *, where: str = "modules.json",
                **loader_kwargs: Any) -> Module:
    """Load the module saved in ``model_path/subfolder`` whose class is ``type_ref``."""
    check_relative(subfolder)
    cls = resolve_type(type_ref, where=where, trust_remote_code=bool(loader_kwargs.get("trust_remote_code")))
    kwargs = {k: v for k, v in loader_kwargs.items() if k in LOADER_KEYS}
    sig = inspect.signature(cls.load)
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in sig.parameters}
    return cls.load(model_path, subfolder=subfolder, **kwargs)
