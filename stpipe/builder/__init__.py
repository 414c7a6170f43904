"""Validated model definition → Module instances → :class:`~stpipe.pipeline.Pipeline`.

The builder is the only door to Module instances: ``stpipe.build``, ``stpipe.load``, the CLI, exports, training
and corpus workers all come through it. ``build`` accepts a definition dict, a YAML/JSON model definition file
(relative paths inside it resolve against its directory), a saved model directory or export, or the name of the
bundled model (:func:`stpipe.formats.model_arg.model_argument` decides which); a saved folder is composed into
a definition by the codec and built like any other (:mod:`stpipe.builder.load`). Nodes are instantiated in
document order, each ``type`` through the registry only; ``{ref: id}`` returns the instance declared earlier
with that ``id``; ``load_from`` builds with ``cls.load(dir, overrides=params)``; a class with
``build_from_node`` (Router) builds its own children through the builder. After each module of a sequence (top
level or a Router route) the builder calls ``module.bind_upstream(previous.get_embedding_dimension())``. Any
error a constructor or loader raises for bad input becomes a :class:`ConfigError` naming the node's config path
(codes ``build.*``).

>>> from stpipe.errors import ConfigError
>>> try:
...     build({"modules": [{"type": "Poolng"}]}, validate=False)
... except ConfigError as e:
...     print(e.problems[0].code, e.problems[0].path_str, e.problems[0].hint)
registry.unknown-type modules[0].type did you mean 'Pooling'?
"""

from stpipe.builder.definition import apply_overrides, read_definition_file
from stpipe.builder.entry import build
from stpipe.builder.load import load
from stpipe.builder.nodes import INPUT_ERRORS, Builder, build_definition, torch_dtype_of

__all__ = ["INPUT_ERRORS", "Builder", "apply_overrides", "build", "build_definition", "load", "read_definition_file",
           "torch_dtype_of"]
