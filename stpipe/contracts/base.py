"""The two shapes every contract shares: :class:`FeatureIO` (what a node reads and writes) and :class:`Contract`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: ``describe(params, upstream, ctx) -> FeatureIO``; ``ctx.hf_config(name_or_path)`` reads a config.json
DescribeFn = Callable[[Mapping[str, Any], Mapping[str, "int | None"], Any], "FeatureIO"]


@dataclass
class FeatureIO:
    """What a module consumes and produces, known from its parameters alone.

    ``consumes`` maps a feature key to the parameter that names it (``""`` when fixed), so that an
    error can point at ``modules[2].module_input_name``. ``produces`` maps a feature key to its last
    dimension, or None when unknown. ``requires_dim`` lists ``(feature, dimension, parameter)`` that must
    match what upstream produced.
    """

    consumes: dict[str, str] = field(default_factory=dict)
    produces: dict[str, int | None] = field(default_factory=dict)
    requires_dim: list[tuple[str, int, str]] = field(default_factory=list)


def no_io(params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
    """The description of a module that says nothing (the base ``Module.describe``)."""
    return FeatureIO()


@dataclass(frozen=True)
class Contract:
    """What validation knows about one module type without importing its class.

    * ``params``: the constructor's parameter names (a test checks them against ``__init__``);
    * ``is_input``: the class is an ``InputModule`` (it turns raw inputs into tensors);
    * ``config_files``: the saved config file names tried in order (the first is the one written);
      ``config_keys`` the keys written; ``config_key_renames`` legacy key → current key;
    * ``clean_config``: turns a saved config dict into the constructor's form (legacy keys), in place;
    * ``shape_params``: parameters that follow from weight shapes, ``param → (tensor names, axis)``;
    * ``enums``: parameter → its allowed values (the schema file must list the same);
    * ``legacy_params``: deprecated parameters the constructor still takes through ``**kwargs``;
    * ``deprecated(params)``: the deprecated parameters a node uses, still accepted (with a warning), as
      ``(parameters, what to write instead)`` pairs;
    * ``config_dict(saved)``: for a type whose state is its config plus weights, what ``get_config_dict()`` of the
      module loaded from a folder returns, computed from that folder's saved parameters (renames and legacy keys
      applied) — so a saved folder becomes a definition without importing the class (a test compares the two).
    """

    name: str
    describe: DescribeFn = no_io
    params: tuple[str, ...] = ()
    is_input: bool = False
    config_files: tuple[str, ...] = ("config.json",)
    config_keys: tuple[str, ...] = ()
    config_key_renames: Mapping[str, str] = field(default_factory=dict)
    clean_config: Callable[[dict[str, Any]], Any] | None = None
    shape_params: Mapping[str, tuple[tuple[str, ...], int]] = field(default_factory=dict)
    enums: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    legacy_params: tuple[str, ...] = ()
    deprecated: Callable[[Mapping[str, Any]], list[tuple[list[str], str]]] | None = None
    config_dict: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None

    @property
    def config_file_name(self) -> str:
        return self.config_files[0]

    def saved_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A saved config dict as the constructor takes it: renames applied, then ``clean_config``."""
        out = dict(config)
        for old, new in self.config_key_renames.items():
            if old in out and new not in out:
                out[new] = out.pop(old)
        if self.clean_config is not None:
            self.clean_config(out)
        return out
