"""One composition without Hydra's own configuration group: what a single run (no ``-m``) composes.

``hydra.compose()`` composes Hydra's own group too (``hydra/config``: launcher, sweeper, job and Hydra logging,
run and sweep directories, help texts — the largest part of a cold ``stpipe validate``'s composition), which a
single run never reads: :func:`stpipe.config.compose.compose` deletes the ``hydra`` node before anything sees it
and keeps only the choices the defaults list made (which model). :func:`compose_without_hydra_group` does what
Hydra's ``ConfigLoaderImpl.load_configuration`` does — the same config repository, defaults list, merges and
override application, with Hydra's own functions — except that the defaults list does not prepend Hydra's group
(``prepend_hydra=False``, a parameter of Hydra's ``create_defaults_list``); the choices go to
``hydra.runtime.choices`` as Hydra puts them. The ``hydra:`` settings that the config files write
(``hydra.job.chdir``, ``hydra.sweep.dir`` …) are still checked against Hydra's schema (:func:`hydra_settings_valid`).

Whenever the result could differ from Hydra's — an override of a ``hydra`` key or ``hydra/…`` group (the caller
composes those with ``hydra.compose``), a defaults entry of a ``hydra/…`` group (it fails here), settings the check
cannot vouch for, a Hydra without these functions — the caller composes again through ``hydra.compose``, which
then gives the verdict (and the error message) Hydra gives.
"""

from __future__ import annotations

from typing import Any


def compose_without_hydra_group(overrides: list[str]) -> Any | None:
    """``hydra.compose(config_name="config", overrides, return_hydra_config=True)`` of the initialised GlobalHydra,
    without Hydra's group: the same config, except that its ``hydra`` node holds only ``runtime.choices``. None
    when this Hydra lacks the functions used or the files' ``hydra:`` settings are not certainly valid (then call
    ``hydra.compose``). Raises what ``hydra.compose`` raises for a bad override or config."""
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
            return None
        prepare, compose_defaults = loader._parse_overrides_and_create_caching_repo, \
            loader._compose_config_from_defaults_list
    except (ImportError, AttributeError):  # pragma: no cover - another Hydra layout
        return None
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
            return None
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
