"""``Module`` and ``InputModule``: the contract every building block of a pipeline follows.

The contract is the seed's (sentence-transformers' ``base.modules``): class attributes ``config_keys``,
``config_file_name``, ``save_in_root``, ``forward_kwargs``; ``forward(features) -> features``;
``get_config_dict``; ``save``/``load`` with the helpers ``load_config``, ``load_dir_path``,
``load_file_path``, ``load_torch_weights``, ``save_config``, ``save_torch_weights``.

stpipe adds one thing the seed lacks, a *static* description of what a module reads and writes, so a
whole graph can be checked before anything is instantiated: :meth:`Module.describe` receives the
node's parameters and the feature dimensions known upstream and returns a :class:`FeatureIO`.

Files are looked up locally first (``Path(model, subfolder, filename)``); a name that is not a local
directory is a hub id, looked up by :func:`stpipe.resources.local_model`: its snapshot in the Hugging Face
cache, else — unless ``HF_HUB_OFFLINE`` or ``local_files_only`` — one download of the repository.
Weights are safetensors; ``pytorch_model.bin`` (pickle) is
refused unless ``allow_pickle=True`` is passed, and then loaded with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_model as save_safetensors_model

from stpipe import files
from stpipe.contracts.base import FeatureIO
from stpipe.errors import LoadError
from stpipe.files import read_json

__all__ = ["FeatureIO", "InputModule", "Module", "read_safetensors"]

SAFETENSORS_NAME = "model.safetensors"
PICKLE_NAME = "pytorch_model.bin"


class Module(ABC, torch.nn.Module):
    """Base class of all modules (the seed's ``Module``)."""

    config_file_name: ClassVar[str] = "config.json"
    config_keys: ClassVar[list[str]] = []
    config_key_renames: ClassVar[dict[str, str]] = {}
    save_in_root: ClassVar[bool] = False
    forward_kwargs: ClassVar[set[str]] = set()

    @abstractmethod
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Read from and write to ``features``; return it."""

    # ----------------------------------------------------------------- static description (stpipe)
    @classmethod
    def describe(cls, params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
        """Static IO of a module with these parameters; ``ctx`` can read a Hugging Face config.json."""
        return FeatureIO()

    # ----------------------------------------------------------------- config
    def get_config_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.config_keys}

    def get_embedding_dimension(self) -> int | None:
        return None

    def on_model_ready(self, model: Any) -> None:  # noqa: B027 - a hook, intentionally empty
        """Called once the owning pipeline is fully built."""

    def bind_upstream(self, dim: int | None) -> None:  # noqa: B027 - a hook, intentionally empty
        """stpipe: called by the builder with the embedding dimension of the module before this one, so a
        YAML node may omit a dimension that follows from the graph (e.g. ``Pooling.embedding_dimension``)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config_dict()})"

    # ----------------------------------------------------------------- saving
    @abstractmethod
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write this module's files into ``output_path``."""

    def save_config(self, output_path: str, filename: str | None = None) -> None:
        path = Path(output_path) / (filename or self.config_file_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.get_config_dict(), indent=4))

    def save_torch_weights(self, output_path: str, safe_serialization: bool = True) -> None:
        os.makedirs(output_path, exist_ok=True)
        if safe_serialization:
            save_safetensors_model(self, os.path.join(output_path, SAFETENSORS_NAME))
        else:
            torch.save(self.state_dict(), os.path.join(output_path, PICKLE_NAME))

    # ----------------------------------------------------------------- loading
    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        init_defaults: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Build the module from its saved config: saved values win over ``init_defaults``; ``overrides``
        (stpipe: the values a YAML node sets explicitly) win over both. Extra loader kwargs are ignored."""
        config = cls.load_config(model_name_or_path, subfolder, token=token, cache_folder=cache_folder,
                                 revision=revision, local_files_only=local_files_only)
        for k, v in (init_defaults or {}).items():
            config.setdefault(k, v)
        config.update(overrides or {})
        return cls(**config)

    @classmethod
    def load_config(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        config_filename: str | None = None,
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
    ) -> dict[str, Any]:
        """The saved config (renames applied), or ``{}`` when the file does not exist."""
        filename = config_filename or cls.config_file_name
        path = cls.load_file_path(model_name_or_path, filename, subfolder, token=token, cache_folder=cache_folder,
                                  revision=revision, local_files_only=local_files_only)
        if path is None:
            return {}
        config = read_json(path)
        if not isinstance(config, dict):
            raise LoadError(f"expected a JSON object, found {type(config).__name__}", path=path)
        for old, new in cls.config_key_renames.items():
            if old in config and new not in config:
                config[new] = config.pop(old)
        return config

    #: the seed's helpers, kept on the class for plugins; the one implementation is :mod:`stpipe.files`
    load_file_path = staticmethod(files.load_file_path)
    load_dir_path = staticmethod(files.load_dir_path)

    @classmethod
    def load_torch_weights(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        model: Self | None = None,
        allow_pickle: bool = False,
    ) -> Self | dict[str, torch.Tensor]:
        """Load ``model.safetensors`` into ``model`` (strict key check) or return the state dict.

        ``pytorch_model.bin`` is a pickle: it is refused unless ``allow_pickle=True``, and then loaded with
        ``torch.load(weights_only=True)``.
        """
        kw = dict(token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
        st_path = cls.load_file_path(model_name_or_path, SAFETENSORS_NAME, subfolder, **kw)
        if st_path is not None:
            state = read_safetensors(st_path)
        else:
            bin_path = cls.load_file_path(model_name_or_path, PICKLE_NAME, subfolder, **kw)
            if bin_path is None:
                where = str(Path(model_name_or_path, subfolder))
                raise LoadError(f"no {SAFETENSORS_NAME} (or {PICKLE_NAME}) found", path=where)
            if not allow_pickle:
                raise LoadError(
                    f"refusing to load pickle weights '{PICKLE_NAME}' (pickle can execute code)", path=bin_path,
                    hint="convert the checkpoint to safetensors, or pass allow_pickle=True if you trust it "
                         "(it is then loaded with torch.load(weights_only=True))")
            state = torch.load(bin_path, map_location="cpu", weights_only=True)
            st_path = bin_path
        if model is None:
            return state
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise LoadError(f"weights do not fit {type(model).__name__}: missing keys {list(missing)}, "
                            f"unexpected keys {list(unexpected)}", path=st_path)
        return model


class InputModule(Module):
    """The first module of a pipeline: turns raw inputs into tensors (the seed's ``InputModule``)."""

    save_in_root: ClassVar[bool] = True
    tokenizer: Any = None
    _tokenize_warned: ClassVar[bool] = False

    @property
    def modalities(self) -> list[str | tuple[str, ...]]:
        return ["text"]

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Turn a batch of inputs into features. The default delegates to a subclass's ``tokenize``."""
        if type(self).tokenize is InputModule.tokenize:
            raise NotImplementedError(f"{type(self).__name__} must implement preprocess()")
        if not InputModule._tokenize_warned:
            warnings.warn(f"{type(self).__name__}.tokenize is deprecated; implement preprocess instead",
                          DeprecationWarning, stacklevel=2)
            InputModule._tokenize_warned = True
        if prompt:
            inputs = [prompt + x if isinstance(x, str) else x for x in inputs]
        return self.tokenize(inputs, **kwargs)

    def tokenize(self, texts: list[str], **kwargs: Any) -> dict[str, Any]:
        """Deprecated alias of :meth:`preprocess`."""
        warnings.warn("tokenize() is deprecated, use preprocess()", DeprecationWarning, stacklevel=2)
        return self.preprocess(texts, **kwargs)

    def save_tokenizer(self, output_path: str, **kwargs: Any) -> None:
        if self.tokenizer is None:
            return
        if hasattr(self.tokenizer, "save_pretrained"):
            self.tokenizer.save_pretrained(output_path, **kwargs)
        else:  # a raw tokenizers.Tokenizer
            self.tokenizer.save(str(Path(output_path, "tokenizer.json")))


# --------------------------------------------------------------------- helpers shared by the loaders
def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    try:
        return load_safetensors(str(path))
    except Exception as exc:  # safetensors raises its own error types for truncated/corrupt files
        raise LoadError(f"cannot read safetensors weights ({exc})", path=str(path),
                        hint="the file is truncated or corrupt; re-save or re-download the model") from exc


class ConfigModule(Module):
    """A module whose whole state is its config (no weights): ``save`` writes the config file, ``load`` reads it —
    or takes the defaults when there is no path (Normalize, LogitScore)."""

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)

    @classmethod
    def load(cls, model_name_or_path: str = "", subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             init_defaults: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
             **kwargs: Any) -> Self:
        """Saved config < ``init_defaults`` (only where the file says nothing) < ``overrides``; keys other than
        ``config_keys`` are dropped."""
        config: dict[str, Any] = {}
        if model_name_or_path:
            config = cls.load_config(model_name_or_path, subfolder, token=token, cache_folder=cache_folder,
                                     revision=revision, local_files_only=local_files_only)
        for k, v in (init_defaults or {}).items():
            config.setdefault(k, v)
        config.update(overrides or {})
        return cls(**{k: v for k, v in config.items() if k in cls.config_keys})
