"""Torch-free facts about each built-in module type, read by validation and by the runtime classes alike.

One :class:`Contract` per built-in type (``stpipe/contracts/<type>.py``): the constructor's parameter names,
the saved config file and keys, the enums (pooling modes, tasks, modalities, dtype names, activation names,
SPLADE options, processing keys) and ``describe`` — what a node with given parameters consumes and produces,
and which dimensions must match. :mod:`stpipe.registry` returns a type's contract without importing its
class; the runtime classes (:mod:`stpipe.modules`) take their constants and ``describe`` from here, so the
two cannot drift, and ``tests/contracts`` checks the JSON Schemas under ``schemas/`` against these enums.
Nothing in this package imports torch or transformers.

>>> from stpipe.contracts.pooling import POOLING
>>> POOLING.describe({"pooling_mode": ["mean", "max"]}, {"token_embeddings": 384}).produces
{'sentence_embedding': 768}
"""

from stpipe.contracts.base import Contract, DescribeFn, FeatureIO

__all__ = ["Contract", "DescribeFn", "FeatureIO"]
