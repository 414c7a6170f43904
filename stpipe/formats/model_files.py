"""What validation reads from model folders without loading weights: config.json, saved module configs, shapes.

:class:`GraphContext` reads a Hugging Face ``config.json`` (the ``ctx`` of ``describe``).

The builder builds such a node with ``cls.load(folder, overrides=<the node's params>)``: the saved config, with
the params written in the YAML winning. The graph checks (:mod:`stpipe.config.graph`) must see the same
parameters, so before ``describe()`` they merge :func:`saved_params` under the node's explicit params:

* the type's own config file, read as JSON with the renames and legacy keys of its contract
  (:meth:`stpipe.contracts.Contract.saved_config`, the same the class's ``load_config`` applies; a third-party
  type without a contract: ``cls.load_config(folder)``); a Transformer reads ``sentence_bert_config.json`` (or a
  legacy name) and its ``model_name_or_path`` is the folder itself (the Hugging Face model lives there);
* a ``tokenizer`` parameter defaults to the folder when it holds ``tokenizer.json`` (as the loaders do);
* weights-only parameters (the contract's ``shape_params``) come from the SHAPES in the ``model.safetensors``
  header (read as JSON, never the data, no torch): StaticEmbedding's ``embedding_dim``, Dense's
  ``in_features``/``out_features`` when its config lacks them.

:func:`shape_conflicts` lists explicit params that contradict those shapes (the load would fail on a size
mismatch). The longest input a ``config.json`` allows: :func:`stpipe.contracts.positions.max_positions`.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from stpipe.files import read_json
from stpipe.resources import resolve_model_path

WEIGHTS_FILE = "model.safetensors"
MAX_HEADER = 100 * 1024 * 1024  # safetensors itself refuses larger headers


@dataclass
class GraphContext:
    """Read-only access to model metadata for ``describe``: ``hf_config`` reads ``config.json`` only (cached)."""

    base_dir: str | FsPath | None = None
    read: list[str] = field(default_factory=list)  # config.json files actually read
    missing: set[str] = field(default_factory=set)  # names whose config.json could not be found
    _cache: dict[str, dict[str, Any] | None] = field(default_factory=dict, repr=False)

    def resolve(self, name_or_path: str) -> str:
        """The model's directory on this machine (:func:`~stpipe.resources.locate_model`), or the name unchanged."""
        return resolve_model_path(name_or_path, self.base_dir)

    def hf_config(self, name_or_path: str) -> dict[str, Any] | None:
        """The model's ``config.json`` as a dict, or None when it cannot be found locally / in the HF cache."""
        if not isinstance(name_or_path, str) or not name_or_path:
            return None
        resolved = self.resolve(name_or_path)
        if resolved not in self._cache:
            self._cache[resolved] = self._read(resolved)
            if self._cache[resolved] is None:
                self.missing.add(name_or_path)
        return self._cache[resolved]

    def _read(self, resolved: str) -> dict[str, Any] | None:
        # resolve() found the model locally, in the model store or in the Hugging Face cache (a snapshot
        # directory); never the network
        f = FsPath(resolved) / "config.json"
        path = str(f) if f.is_file() else None
        if path is None:
            return None
        try:
            data = json.loads(FsPath(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        self.read.append(path)
        return data if isinstance(data, dict) else None

@dataclass
class Saved:
    """The saved parameters of one folder, the files they were read from, and the shape-derived values."""

    params: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    shapes: dict[str, tuple[int, str]] = field(default_factory=dict)  # param → (value, "file: tensor [shape]")


@contextmanager
def _quiet() -> Iterator[None]:
    """Static reading must not print the loaders' "ignoring unknown config key" log lines."""
    log = logging.getLogger("stpipe")
    old = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(old)


def tensor_shapes(folder: str | FsPath) -> dict[str, list[int]]:
    """Tensor name → shape from the ``model.safetensors`` header of ``folder`` ({} when there is none).

    The header is read directly (8 bytes little-endian length, then that much JSON): no weights, no torch.
    ValueError for a file that is not safetensors."""
    f = FsPath(folder) / WEIGHTS_FILE
    if not f.is_file():
        return {}
    with open(f, "rb") as fh:
        head = fh.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n <= 0 or n > min(MAX_HEADER, f.stat().st_size - 8):
            raise ValueError(f"{f} is not a safetensors file (bad header length)")
        try:
            header = json.loads(fh.read(n))
        except ValueError as exc:
            raise ValueError(f"{f} is not a safetensors file (its header is not JSON)") from exc
    if not isinstance(header, dict):
        raise ValueError(f"{f} is not a safetensors file (its header is not a JSON object)")
    tensors = {k: v for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
    data = f.stat().st_size - 8 - n
    ends = [v.get("data_offsets", [0, 0])[-1] for v in tensors.values()]
    if any(not isinstance(e, int) or e > data for e in ends):  # as safetensors checks when it opens the file
        raise ValueError(f"{f} is truncated: its header describes more data than the file holds")
    return {k: list(v["shape"]) for k, v in tensors.items() if isinstance(v.get("shape"), list)}


def _init_params(spec: Any) -> set[str]:
    if spec.contract is not None:
        return set(spec.contract.params)
    try:
        return set(inspect.signature(spec.cls.__init__).parameters) - {"self"}
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return set()


def saved_config(spec: Any, folder: str) -> tuple[dict[str, Any], str | None]:
    """The saved config the class would read (a built-in's through its contract, as plain JSON), and its file."""
    contract = spec.contract
    if contract is None:  # a third-party type: its own loader
        name = getattr(spec.cls, "config_file_name", "config.json")
        if not (FsPath(folder) / name).is_file():
            return {}, None
        with _quiet():
            return spec.cls.load_config(folder), str(FsPath(folder) / name)
    found = next((f for f in contract.config_files if (FsPath(folder) / f).is_file()), None)
    if found is None:
        return {}, None
    path = FsPath(folder) / found
    data = read_json(path)  # a LoadError naming the file: malformed, not UTF-8, unreadable
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return contract.saved_config(data), str(path)


def saved_params(spec: Any, folder: str | FsPath) -> Saved:
    """The parameters ``cls.load(folder)`` would take from the folder (see the module docstring), for the
    registry entry ``spec``. Raises ValueError (or a third-party class's own error) for a malformed file."""
    folder = str(folder)
    out = Saved()
    init = _init_params(spec)
    config, file = saved_config(spec, folder)
    out.params.update(config)
    if file is not None:
        out.files.append(file)
    if "model_name_or_path" in init and (FsPath(folder) / "config.json").is_file():
        out.params["model_name_or_path"] = folder
    if "tokenizer" in init and "tokenizer" not in out.params and (FsPath(folder) / "tokenizer.json").is_file():
        out.params["tokenizer"] = folder
    wanted = spec.contract.shape_params if spec.contract is not None else {}
    if wanted:
        shapes = tensor_shapes(folder)
        for param, (tensors, axis) in wanted.items():
            tensor = next((t for t in tensors if t in shapes), None)
            if tensor is None or len(shapes[tensor]) <= axis:
                continue
            value = int(shapes[tensor][axis])
            out.shapes[param] = (value, f"{FsPath(folder) / WEIGHTS_FILE}: {tensor} {shapes[tensor]}")
            out.params.setdefault(param, value)
    return out


def shape_conflicts(explicit: Mapping[str, Any], saved: Saved) -> Iterator[tuple[str, Any, int, str]]:
    """(param, explicit value, value the weights fix, where) for every explicit param the weights contradict."""
    for param, (value, where) in saved.shapes.items():
        given = explicit.get(param)
        if isinstance(given, int) and not isinstance(given, bool) and given != value:
            yield param, given, value, where
