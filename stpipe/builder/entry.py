"""``build``: a definition dict, a definition file or a saved model → a validated, built Pipeline."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stpipe.builder.definition import apply_overrides, read_definition_file
from stpipe.builder.load import load
from stpipe.builder.nodes import build_definition
from stpipe.config.sources import SourceMap
from stpipe.config.validate import validate as validate_definition
from stpipe.errors import ConfigError
from stpipe.formats.model_arg import model_argument
from stpipe.pipeline import Pipeline


def build(
    definition: Mapping[str, Any] | str | os.PathLike,
    *,
    overrides: Sequence[str] = (),
    validate: bool = True,
    device: str | None = None,
    trust_remote_code: bool | None = None,
    base_dir: str | os.PathLike | None = None,
    allow_pickle: bool = False,
    dtype: str | None = None,
) -> Pipeline:
    """Build a :class:`Pipeline` from a model definition (dict or YAML file), a saved model directory (or graph
    export), or a bundled / cached hub model — what the argument is, :func:`stpipe.formats.model_arg.model_argument`
    decides, as for the command line.

    ``overrides`` are ``key.path=value`` strings (list items by index: ``modules.1.pooling_mode=cls``;
    ``+key=value`` adds a key, ``~key`` removes one). ``validate=False`` skips the static checks (the
    constructors still check their own arguments). ``trust_remote_code`` overrides the definition's.
    ``allow_pickle`` lets modules fall back to ``pytorch_model.bin`` weights (loaded with ``weights_only``).
    ``dtype`` (fp32 | bf16 | fp16 | auto) overrides the definition's ``dtype`` (see :mod:`stpipe.hardware`).
    """
    sources = None
    if isinstance(definition, (str, os.PathLike)):
        kind, where = model_argument(definition, base_dir)
        if kind != "definition":  # a saved model or export (a hub id is looked up in the local cache)
            return load(where, device=device, trust_remote_code=bool(trust_remote_code), allow_pickle=allow_pickle,
                        dtype=dtype, overrides=overrides)
        target = Path(where)
        definition, sources = read_definition_file(target)
        base_dir = base_dir if base_dir is not None else target.parent
    if overrides and sources is None:
        sources = SourceMap()
    data = apply_overrides(definition, overrides, sources)
    if dtype is not None:
        data["dtype"] = dtype
        if sources is not None:
            sources[("dtype",)] = "the dtype= argument"
    original = copy.deepcopy(data)
    try:
        if validate:
            data = validate_definition(data, sources=sources, base_dir=base_dir)
        return build_definition(data, original, device=device, trust_remote_code=trust_remote_code, base_dir=base_dir,
                      allow_pickle=allow_pickle)
    except ConfigError as exc:
        if not sources or all(p.source for p in exc.problems):
            raise
        raise ConfigError([p if p.source else p.with_source(sources.lookup(p.path)) for p in exc.problems],
                          exc.title) from None
