"""What a MODEL argument is — the one rule for ``stpipe.build``, ``stpipe.load`` and every CLI verb.

* ``"definition"``: a YAML/JSON model definition file (a path ending ``.yaml``/``.yml``/``.json`` that does not
  exist is still one: its reader says it is missing);
* ``"saved"``: a directory — a sentence-transformers/stpipe save, or a graph export (``stpipe_export.json``);
  the codec composes either into a definition (:func:`stpipe.formats.st.to_definition`);
* ``"hub"``: anything else — a bundled model name or a Hugging Face id, looked up in the local cache (or
  downloaded once when online) and then loaded as a saved directory.

Overrides apply to every kind alike (``modules.0.max_seq_length=128``): a saved model is a definition like any
other once composed.

>>> model_argument("org/some-model")
ModelArgument(kind='hub', path='org/some-model')
>>> model_argument("conf/model/missing.yaml").kind
'definition'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from stpipe.resources import resolve_model_path

DEFINITION_SUFFIXES = (".yaml", ".yml", ".json")


class ModelArgument(NamedTuple):
    kind: str  # definition | saved | hub
    path: str  # the file or directory on this machine; for "hub", the name as given


def model_argument(arg: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> ModelArgument:
    """The kind of ``arg`` (see the module docstring); relative paths resolve against ``base_dir``."""
    path = Path(resolve_model_path(str(arg), base_dir)).expanduser()
    if path.is_dir():
        return ModelArgument("saved", str(path))
    if path.is_file() or path.suffix.lower() in DEFINITION_SUFFIXES:
        return ModelArgument("definition", str(path))
    return ModelArgument("hub", str(arg))
