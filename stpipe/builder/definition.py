"""A model definition as the builder takes it: read from a YAML/JSON file, overrides applied (the command line's
Hydra grammar), interpolations resolved, made plain (OmegaConf containers, tuples), bounded in depth."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from stpipe.contracts.pipeline import MAX_DEPTH
from stpipe.errors import ConfigError, config_error


def read_definition_file(path: Path) -> tuple[dict[str, Any], Any]:
    """A YAML (or JSON) model definition file as a plain dict and its SourceMap; ConfigError (``yaml.*``)."""
    from stpipe.config.sources import load_yaml

    if not path.is_file():
        raise config_error("yaml.not-found", (), f"no model definition file or model directory at {path}",
                           hint="give a YAML model definition, a saved model directory, or a bundled model name")
    data, sources = load_yaml(path)
    if not isinstance(data, dict):
        raise config_error("yaml.not-a-mapping", (), f"{path} must hold a mapping (name, modules, …)",
                           found=type(data).__name__, source=str(path))
    return data, sources


def apply_overrides(definition: Mapping[str, Any], overrides: Sequence[str], sources: Any = None
                    ) -> dict[str, Any]:
    """A plain-dict copy of ``definition`` with overrides applied — Hydra's override grammar, through the same
    composition as the command line (``modules.1.pooling_mode=cls``, ``+key=value``, ``~key``); each override is
    recorded in ``sources`` (a SourceMap) when given."""
    plain = _plain(definition)
    if not overrides:
        return _resolve_interpolations(plain) if _has_interpolation(plain) else plain
    from stpipe.config.compose import compose

    prefixed = [_prefix_model(o) for o in overrides]
    try:
        composed = compose(plain, prefixed, sources=sources)
    except ConfigError as exc:  # speak of the overrides as the caller wrote them (no `model.` prefix)
        def unprefix(text: str | None) -> str | None:
            return text.replace("model.", "") if text else text

        raise ConfigError([replace(p, message=unprefix(p.message), hint=unprefix(p.hint), source=unprefix(p.source))
                           for p in exc.problems], exc.title) from None
    if sources is not None:
        for o in overrides:
            key = o.lstrip("+~").partition("=")[0]
            sources[tuple(int(p) if p.isdigit() else p for p in key.split("."))] = f"override `{o}`"
    return composed.definition or {}


def _resolve_interpolations(plain: dict[str, Any]) -> dict[str, Any]:
    """``${key}`` interpolations of a definition given on its own resolve against the definition itself
    (under composition with overrides they follow Hydra: relative to the whole configuration, ``${model.key}``)."""
    from omegaconf import OmegaConf

    from stpipe.config.interpolation import resolve

    try:
        cfg = OmegaConf.create(plain)
    except Exception as exc:
        raise config_error("yaml.interpolation", (), f"cannot read the model definition: {exc}") from None
    return resolve(cfg, None)  # type: ignore[return-value]


def _prefix_model(override: str) -> str:
    op = override[:2] if override.startswith("++") else override[:1] if override[:1] in "+~" else ""
    return f"{op}model.{override[len(op):]}"


def _has_interpolation(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(_has_interpolation(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_interpolation(v) for v in value)
    return False



def _plain(value: Any, path: tuple = ()) -> Any:
    """A plain JSON-like copy (OmegaConf containers resolved, tuples as lists); a definition nested deeper than
    MAX_DEPTH or holding a one-shot iterator (a generator: it could not be read twice) is a ConfigError."""
    if len(path) > MAX_DEPTH:
        raise config_error("schema.depth", path[:4] + ("…",), f"the definition is nested deeper than {MAX_DEPTH} "
                           "levels (or refers to itself)")
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, (DictConfig, ListConfig)):
            return _plain(OmegaConf.to_container(value, resolve=True), path)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, Mapping):
        return {k: _plain(v, (*path, k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, (*path, i)) for i, v in enumerate(value)]
    if isinstance(value, Iterator):
        raise config_error("schema.type", path, f"expected a list, found a {type(value).__name__}",
                           expected="list", found=type(value).__name__, hint="pass list(...) of it")
    return value
