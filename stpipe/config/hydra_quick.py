"""Hydra set up for stpipe's compositions, and one composition without Hydra's own configuration group — the one
module of stpipe that uses Hydra's private API (``hydra._internal``, underscored names, attributes outside Hydra's
documented surface). Everything else goes through its functions; ``tests/config/test_hydra_quick.py`` checks that
each private name used here still exists with the shape used, so that a Hydra upgrade fails that test, not users
(``pyproject.toml`` pins ``hydra-core<1.4`` for the same reason).

:func:`hydra_on` initialises Hydra on a config directory (without the plugin scan where the composition needs no
plugin). ``hydra.compose()`` composes Hydra's own group too (``hydra/config``: launcher, sweeper, job and Hydra
logging, run and sweep directories, help texts — the largest part of a cold ``stpipe validate``'s composition),
which a single run never reads: :func:`stpipe.config.compose.compose` deletes the ``hydra`` node before anything
sees it and keeps only the choices the defaults list made (which model). :func:`compose_without_hydra_group` does
what Hydra's ``ConfigLoaderImpl.load_configuration`` does — the same config repository, defaults list, merges and
override application, with Hydra's own functions — except that the defaults list does not prepend Hydra's group
(``prepend_hydra=False``, a parameter of Hydra's ``create_defaults_list``); the choices go to
``hydra.runtime.choices`` as Hydra puts them. The ``hydra:`` settings that the config files write
(``hydra.job.chdir``, ``hydra.sweep.dir`` …) are still checked against Hydra's schema (:func:`hydra_settings_valid`).
Such a composition (``hydra_on(…, quick=True)``) reads the config files through :class:`BoundedFileSource`
(stpipe's YAML reading: libyaml, alias and depth bounds) and shares Hydra's ConfigStore instead of copying it
for every composition (:class:`StructuredConfigSource`).

Whenever the result could differ from Hydra's — an override of a ``hydra`` key or ``hydra/…`` group (the caller
composes those with ``hydra.compose``), a defaults entry of a ``hydra/…`` group (it fails here), settings the check
cannot vouch for (:class:`NeedsHydraGroup`), a Hydra without these functions, any error — the caller composes again
through ``hydra.compose`` with Hydra's plugins, which then gives the verdict (and the message) Hydra gives.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path as FsPath
from typing import Any

from hydra._internal.core_plugins.file_config_source import FileConfigSource
from hydra._internal.core_plugins.structured_config_source import StructuredConfigSource as _HydraStructuredSource
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource


class NeedsHydraGroup(Exception):
    """The composition without Hydra's group cannot vouch for the result: compose with ``hydra.compose``."""


class BoundedFileSource(FileConfigSource):
    """Hydra's ``file://`` config source reading YAML as :func:`stpipe.config.sources.load_yaml` does: libyaml's
    parser with PyYAML's constructor and resolver (OmegaConf's loader: the same values), alias expansion and nesting
    bounded, a broken file a :class:`~stpipe.errors.ConfigError` naming file:line:col — so the whole config tree
    need not be read first to keep Hydra's unbounded reading away from an alias bomb."""

    def load_config(self, config_path: str) -> ConfigResult:
        from omegaconf import OmegaConf

        from stpipe.config.sources import load_yaml

        full_path = os.path.realpath(os.path.join(self.path, self._normalize_file_name(config_path)))
        if not os.path.exists(full_path):
            raise ConfigLoadError(f"Config not found : {full_path}")
        data = load_yaml(full_path)[0]
        if data is not None and not isinstance(data, (list, dict, str)):  # Hydra's own reading says what is wrong
            return super().load_config(config_path)
        with open(full_path, encoding="utf-8") as f:
            header = ConfigSource._get_header_dict(f.read(512))
        return ConfigResult(config=OmegaConf.create(data) if data is not None else OmegaConf.create(),
                            path=f"{self.scheme()}://{self.path}", provider=self.provider, header=header)


class StructuredConfigSource(_HydraStructuredSource):
    """Hydra's ``structured://`` source (the ConfigStore), not deep-copied with the repository that each composition
    copies: the ConfigStore is a singleton that a composition only reads (its ``load`` copies the node it returns).
    Named as Hydra's class because Hydra checks the schema source by class name."""

    def __deepcopy__(self, memo: dict[int, Any]) -> StructuredConfigSource:
        return copy.copy(self)


@contextmanager
def hydra_on(config_dir: FsPath, *, plugins: bool = True, quick: bool = False) -> Iterator[bool]:
    """Hydra initialised on ``config_dir``, leaving any global Hydra state of the caller untouched; yields whether
    the config files are read through :class:`BoundedFileSource` (else the caller bounds them first).

    ``plugins=False`` (one composition, no ``hydra/…`` override): when Hydra has not scanned its plugins yet in this
    process, it is initialised without that scan — the scan imports every installed launcher and sweeper (joblib,
    submitit, optuna, ray …) just to look for search-path plugins, the slowest part of a cold ``stpipe validate``.
    The search path is then Hydra's own default one (``pkg://hydra.conf``, ``config_dir``, ``structured://``);
    a composition that needs a plugin's configs fails that way, and the caller composes again with the scan.
    ``quick`` (with ``plugins=False``; for :func:`compose_without_hydra_group`): only the config sources are set up
    (stpipe's file and structured sources while Hydra is on), not the basic launcher's and sweeper's configs. A
    sweep's ``multirun`` (launchers, sweepers) always runs with ``plugins=True``."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    backup = get_gh_backup()
    GlobalHydra.instance().clear()
    registered: dict[str, Any] | None = None
    try:
        registered = None if plugins else _init_without_plugin_scan(config_dir, quick)
        if registered is None:
            with initialize_config_dir(config_dir=str(config_dir), version_base=None):
                yield False
        else:
            yield quick
    finally:
        if registered is not None:
            _sources_registry().types = registered  # Hydra's own sources again (a later plugin scan expects them)
        restore_gh_from_backup(backup)


def plugins_scanned() -> bool:
    """Whether Hydra has scanned (imported) its installed plugins in this process."""
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    return Plugins in Singleton._instances


def _sources_registry() -> Any:
    from hydra._internal.sources_registry import SourcesRegistry

    return SourcesRegistry.instance()


def _init_without_plugin_scan(config_dir: FsPath, quick: bool) -> dict[str, Any] | None:
    """What ``initialize_config_dir(config_dir, version_base=None)`` does, with Hydra's plugin scan limited to its
    core plugins (``hydra._internal.core_plugins``: the config sources, the basic launcher and sweeper, whose
    configs they store; ``quick``: the config sources alone, then stpipe's in place of two of them) — the installed
    ``hydra_plugins`` packages are not imported. Returns the config-source registry to restore afterwards; None —
    nothing done — when the plugins are scanned already (then the scan costs nothing) or this Hydra version lacks
    the pieces."""
    if plugins_scanned():
        return None
    try:
        import hydra._internal.core_plugins as core_plugins
        from hydra import version
        from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
        from hydra._internal.core_plugins.importlib_resources_config_source import ImportlibResourcesConfigSource
        from hydra._internal.hydra import Hydra
        from hydra.core.plugins import Plugins

        scanned = ([FileConfigSource, ImportlibResourcesConfigSource, _HydraStructuredSource] if quick else
                   Plugins._scan_all_plugins(modules=[core_plugins])[0])
    except (ImportError, AttributeError):  # pragma: no cover - another Hydra layout: the ordinary initialisation
        return None
    registry = _sources_registry()
    for source in scanned:
        if issubclass(source, ConfigSource):
            registry.register(source)
    before = dict(registry.types)
    if quick:
        registry.types.update({"file": BoundedFileSource, "structured": StructuredConfigSource})
    search_path = ConfigSearchPathImpl()  # as hydra._internal.utils.create_config_search_path, no plugins asked
    search_path.append("hydra", "pkg://hydra.conf")
    search_path.append("main", str(config_dir))
    search_path.append("schema", "structured://")
    version.setbase(None)
    Hydra.create_main_hydra2(task_name="app", config_search_path=search_path)
    return before


def compose_without_hydra_group(overrides: list[str]) -> Any:
    """``hydra.compose(config_name="config", overrides, return_hydra_config=True)`` of the initialised GlobalHydra,
    without Hydra's group: the same config, except that its ``hydra`` node holds only ``runtime.choices``. Raises
    what ``hydra.compose`` raises for a bad override or config, and :class:`NeedsHydraGroup` when this Hydra lacks
    the functions used or the files' ``hydra:`` settings are not certainly valid (then use ``hydra.compose``)."""
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra._internal.defaults_list import create_defaults_list
        from hydra.core.global_hydra import GlobalHydra
        from hydra.errors import ConfigCompositionException
        from hydra.types import RunMode
        from omegaconf import OmegaConf, open_dict
        from omegaconf.errors import OmegaConfBaseException

        loader = GlobalHydra.instance().config_loader()
        if not isinstance(loader, ConfigLoaderImpl):  # pragma: no cover - another Hydra
            raise NeedsHydraGroup("another config loader")
        prepare, compose_defaults = loader._parse_overrides_and_create_caching_repo, \
            loader._compose_config_from_defaults_list
    except (ImportError, AttributeError) as exc:  # pragma: no cover - another Hydra layout
        raise NeedsHydraGroup(str(exc)) from None
    try:  # ConfigLoaderImpl.load_configuration / _load_configuration_impl, run_mode=RUN, from_shell=False
        loader.ensure_main_config_source_available()
        parsed, repo = prepare("config", overrides)
        loader.validate_sweep_overrides_legal(overrides=parsed, run_mode=RunMode.RUN, from_shell=False)
        defaults = create_defaults_list(repo=repo, config_name="config", overrides_list=parsed, prepend_hydra=False,
                                        skip_missing=False)
        cfg = compose_defaults(defaults=defaults.defaults, repo=repo)
        OmegaConf.set_struct(cfg, True)
        ConfigLoaderImpl._apply_overrides_to_config(defaults.config_overrides, cfg)
    except OmegaConfBaseException as exc:
        raise ConfigCompositionException().with_traceback(exc.__traceback__) from exc
    with open_dict(cfg):
        settings = cfg.pop("hydra", None)
        if settings is not None and not hydra_settings_valid(settings):
            raise NeedsHydraGroup("hydra: settings the check cannot vouch for")
        cfg["hydra"] = {"runtime": {"choices": dict(defaults.overrides.known_choices)}}
    return cfg


def hydra_settings_valid(settings: Any) -> bool:
    """Whether the ``hydra:`` settings the config files wrote merge into Hydra's schema (the ``hydra/config`` node of
    Hydra's ConfigStore, ``HydraConf``) as they would in Hydra's own composition: each top-level key into its typed
    node. False when in doubt (an unknown key, a wrong type, a key the schema leaves untyped or unset)."""
    from omegaconf import DictConfig, OmegaConf

    try:
        from hydra.core.config_store import ConfigStore

        schema = ConfigStore.instance().repo["hydra"]["config.yaml"].node
        if not isinstance(settings, DictConfig):
            return False
        for key in settings:
            if not isinstance(schema[key], DictConfig) or not isinstance(settings[key], DictConfig):
                return False
            OmegaConf.merge(schema[key], settings[key])
    except Exception:  # whatever Hydra would say about it, it says it in its own composition
        return False
    return True


def sweep_combinations(sweeps: list[Any]) -> list[list[str]]:
    """The points of parsed sweep overrides (``a=1,2 b=x,y``), each a list of plain overrides, in the order of
    Hydra's basic sweeper (its job numbers): ``[[]]`` for no sweep. Raises what Hydra raises for a bad sweep."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return BasicSweeper.split_arguments(sweeps, None)[0] if sweeps else [[]]


def run_multirun(task_function: Any, overrides: list[str]) -> Any:
    """Hydra's multirun of ``config`` on the initialised GlobalHydra (:func:`hydra_on`) — what ``@hydra.main`` does
    for ``-m``: the configured sweeper expands ``overrides``, the configured launcher calls ``task_function(cfg)``
    once per job, each in its own ``hydra.sweep.dir`` subdirectory."""
    from hydra.core.global_hydra import GlobalHydra

    return GlobalHydra.instance().hydra.multirun(config_name="config", task_function=task_function,
                                                 overrides=overrides)
