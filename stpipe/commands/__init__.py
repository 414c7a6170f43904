"""The verbs of the ``stpipe`` command, one module each (argument parsing lives in :mod:`stpipe.cli`).

``encode``, ``predict``/``rank`` (CrossEncoders),
``validate``, ``import_`` (``stpipe import``), ``export``, ``schema`` and ``report`` (a sweep's
results) each define ``run(model, overrides, flags) -> int``; :mod:`stpipe.commands.common` holds what they
share (composition with the run settings' file checks, sweeps, building the pipeline, printing).
Importing this package imports no torch: each verb imports what it needs when it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

#: verb → module of this package
VERB_MODULES = {"encode": "encode", "merge": "merge", "evaluate": "evaluate", "validate": "validate",
                "import": "import_", "export": "export", "schema": "schema", "report": "report", "predict": "predict",
                "rank": "rank", "train": "train", "serve": "serve"}


def verb_groups(name: str) -> tuple[str, ...]:
    """The optional config groups (:data:`stpipe.config.compose.VERB_GROUPS`: data, training, loss) that a verb
    reads — its module's ``GROUPS`` (none by default); a composition for the verb leaves the others out unless an
    override names them."""
    return tuple(getattr(importlib.import_module(f"{__name__}.{VERB_MODULES[name]}"), "GROUPS", ()))


def verb(name: str) -> Callable[[str | None, list[str], set[str]], int]:
    """The ``run`` function of a verb."""
    return importlib.import_module(f"{__name__}.{VERB_MODULES[name]}").run


__all__ = ["VERB_MODULES", "verb", "verb_groups"]
