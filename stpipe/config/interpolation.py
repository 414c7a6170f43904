"""Resolving ``${…}`` interpolations under stpipe's policy: the environment reaches the run settings only.

``${oc.env:NAME}`` may appear in the run settings (``conf/config.yaml``, ``device=${oc.env:DEVICE}``): they
say how this machine runs a model and are never saved. A model definition — a YAML file, a ``model.*`` override,
a definition given to ``stpipe.build``, a saved model's configs — is what ``Pipeline.save``/``stpipe export`` and
``stpipe import`` write, so a value of it may not read the environment, directly or through another key (a model
value ``${run_key}`` whose run setting is ``${oc.env:…}``): that is the problem ``yaml.env-interpolation``, and no
environment value is ever resolved into a definition. Other interpolations (``${model.name}``, ``${d}``) resolve as
in Hydra.

>>> from omegaconf import OmegaConf
>>> try:
...     resolve(OmegaConf.create({"model": {"name": "${oc.env:HOME}"}}), model_key="model")
... except Exception as e:
...     print(e.problems[0].code, e.problems[0].path_str)
yaml.env-interpolation model.name
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stpipe.errors import ConfigError, Problem

HINT = ("environment variables (${oc.env:…}) may be read by the run settings only (conf/config.yaml or a run "
        "override such as device=${oc.env:DEVICE}); a model definition is saved with the model, so write the value "
        "itself")


class _EnvRead(Exception):
    pass


@contextmanager
def _env_refused(reads: list[str]) -> Iterator[None]:
    from omegaconf import OmegaConf
    from omegaconf.resolvers import oc

    def refuse(key: str, default: Any = None) -> Any:
        reads.append(key)
        raise _EnvRead(key)

    OmegaConf.register_new_resolver("oc.env", refuse, replace=True)
    try:
        yield
    finally:
        OmegaConf.register_new_resolver("oc.env", oc.env, replace=True)


def _path(full_key: str) -> tuple[str | int, ...]:
    """``model.modules[1].name`` → ``("model", "modules", 1, "name")``."""
    parts = re.sub(r"\[(\d+)\]", r".\1", full_key).strip(".").split(".")
    return tuple(int(p) if p.isdigit() else p for p in parts if p)


def _interpolation_error(exc: Any) -> ConfigError:
    key = getattr(exc, "full_key", "") or ""
    cause = exc.__cause__ or exc
    text = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return ConfigError([Problem(code="yaml.interpolation", path=_path(key), message=f"cannot resolve an "
                                f"interpolation: {text}", hint="${a.b} refers to another key of the configuration "
                                "(a.b)")])


def resolve(cfg: Any, model_key: str | None) -> Any:
    """``cfg`` (an OmegaConf container) as plain containers, resolved; the part under ``model_key`` (the whole
    ``cfg`` when None) may not read the environment (``yaml.env-interpolation``); other failures are
    ``yaml.interpolation``."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    model = cfg if model_key is None else cfg.get(model_key)
    reads: list[str] = []
    if model is not None:
        try:
            with _env_refused(reads):
                OmegaConf.to_container(model, resolve=True)
        except OmegaConfBaseException as exc:
            if not reads:
                raise _interpolation_error(exc) from None
            key = getattr(exc, "full_key", "") or ""
            path = _path(key)
            if model_key is not None and path[:1] != (model_key,):
                path = (model_key, *path)
            raise ConfigError([Problem(code="yaml.env-interpolation", path=path, hint=HINT,
                                       message=f"a model definition may not read the environment variable "
                                               f"'{reads[0]}'")]) from None
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise _interpolation_error(exc) from None


_MARK = "\x00stpipe-env\x00"


def env_free(cfg: Any, resolved: Any) -> Any:
    """``resolved`` (``cfg`` resolved, as plain containers) with every value that came from the environment — an
    ``${oc.env:…}`` of its own or through another key — put back as the interpolation written in ``cfg``: what a
    run's record (``run.yaml``, ``training.yaml``) may hold, since environment values are never saved.

    >>> import os
    >>> from omegaconf import OmegaConf
    >>> os.environ["STPIPE_DOCTEST_DEVICE"] = "cpu"
    >>> cfg = OmegaConf.create({"device": "${oc.env:STPIPE_DOCTEST_DEVICE}", "out": "${device}/x", "n": 2})
    >>> env_free(cfg, OmegaConf.to_container(cfg, resolve=True))
    {'device': '${oc.env:STPIPE_DOCTEST_DEVICE}', 'out': '${device}/x', 'n': 2}
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    from omegaconf.resolvers import oc

    OmegaConf.register_new_resolver("oc.env", lambda key, default=None: f"{_MARK}{key}{_MARK}", replace=True)
    try:
        marked = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException:  # resolve() has reported it already
        return resolved
    finally:
        OmegaConf.register_new_resolver("oc.env", oc.env, replace=True)
    return _put_back(marked, OmegaConf.to_container(cfg, resolve=False), resolved)


def _put_back(marked: Any, raw: Any, resolved: Any) -> Any:
    if isinstance(marked, str) and _MARK in marked:
        return raw if isinstance(raw, str) else None  # the interpolation as written
    if isinstance(marked, dict) and isinstance(resolved, dict):
        if isinstance(raw, str):  # a whole mapping from one interpolation that reads no environment
            raw = {}
        return {k: _put_back(marked.get(k), (raw or {}).get(k), v) for k, v in resolved.items()}
    if isinstance(marked, list) and isinstance(resolved, list):
        raw_items = raw if isinstance(raw, list) else [None] * len(resolved)
        return [_put_back(m, r, v) for m, r, v in zip(marked, raw_items, resolved, strict=False)]
    return resolved
