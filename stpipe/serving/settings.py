"""The serve settings (the ``serve`` node: ``conf/serve/default.yaml`` + overrides) and the models to serve.

``stpipe serve`` composes the run settings with ``serve=default`` unless an override picks another file of
``conf/serve/`` (:func:`serve_overrides`; ``host=…``/``port=…`` are shorthands for ``serve.host``/``serve.port``).
:func:`settings_problems` checks the node against ``schemas/serve.schema.json``; :func:`served_models` composes and
validates each model — the MODEL argument, or every entry of ``serve.models`` — exactly as the other verbs do,
before anything is built or bound.

>>> serve_overrides(["port=9000", "batch_size=8"])
['serve=default', 'serve.port=9000', 'batch_size=8']
>>> [p.path_str for p in settings_problems({"port": "x"})]
['serve.port']
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from stpipe.errors import ConfigError, Problem, UsageError

SCHEMA = "serve.schema.json"
TITLE = "invalid serve settings"
#: command-line shorthands of serve settings
SHORTHANDS = {"host": "serve.host", "port": "serve.port"}
#: model types served on /v1/embeddings; a CrossEncoder is served on /v1/rerank
EMBEDDING_TYPES = ("SentenceTransformer", "SparseEncoder")


@cache
def defaults() -> dict[str, Any]:
    """``conf/serve/default.yaml`` as a dict (do not mutate)."""
    import yaml

    from stpipe.resources import conf_dir

    return yaml.safe_load((conf_dir() / "serve" / "default.yaml").read_text(encoding="utf-8"))


def with_defaults(node: Mapping[str, Any] | None) -> dict[str, Any]:
    """``node`` over the defaults, one level deep for the sections (``limits``, ``batching`` …)."""
    out = copy.deepcopy(defaults())
    for key, value in dict(node or {}).items():
        if key == "defaults":
            continue
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key != "models":
            out[key] = {**out[key], **dict(value)}
        else:
            out[key] = value
    return out


def serve_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides of the serve verb's composition: ``serve=default`` first unless one picks a serve file,
    and ``host=``/``port=`` as ``serve.host=``/``serve.port=``."""
    out = [f"{SHORTHANDS[o.split('=', 1)[0]]}={o.split('=', 1)[1]}" if o.split("=", 1)[0] in SHORTHANDS else o
           for o in overrides]
    if not any(o.lstrip("+").split("=", 1)[0] == "serve" for o in out):
        out.insert(0, "serve=default")
    return out


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    from stpipe.config.schema import load_schema

    return Draft202012Validator(load_schema(SCHEMA))


def settings_problems(node: Any) -> list[Problem]:
    """The serve node's mistakes against ``schemas/serve.schema.json`` (paths start at ``serve``)."""
    from stpipe.config.schema import schema_problems

    if not isinstance(node, Mapping):
        return [Problem(code="schema.type", path=("serve",), message="the serve settings are a mapping",
                        hint="pick a file of conf/serve with serve=NAME, or override keys: serve.port=9000")]
    return schema_problems(_validator(), dict(node), ("serve",), "the serve settings")


def check_settings(composed: Any) -> dict[str, Any]:
    """The composed serve settings, with defaults; ConfigError (with each setting's source) otherwise."""
    node = composed.run.get("serve")
    problems = settings_problems(node)
    if problems:
        raise ConfigError(composed.run_sources.apply(problems) if composed.run_sources else problems, title=TITLE)
    return with_defaults(node)


@dataclass
class ModelSpec:
    """One model to serve: the name clients send as ``model``, its composition, and what it is."""

    name: str
    composed: Any  # stpipe.config.compose.Composed, validated
    model_type: str

    @property
    def is_cross_encoder(self) -> bool:
        return self.model_type == "CrossEncoder"

    @property
    def folders(self) -> list[Path]:
        """Where this model's files are (its YAML file's directory, a saved model directory)."""
        found = [Path(p) for p in (self.composed.base_dir, self.composed.saved_model) if p]
        return [p.resolve() for p in found if p.is_dir()]


def default_name(composed: Any, model: str | None) -> str:
    """A single model's served name: its conf/model name or file stem, or its saved directory's name."""
    if composed.saved_model:
        return Path(str(composed.saved_model).rstrip("/")).name or "model"
    if composed.model_file is not None and not str(Path(composed.model_file).stem).startswith("_file_"):
        return Path(composed.model_file).stem
    return Path(model).stem if model else "model"


def _spec(name: str, composed: Any) -> ModelSpec:
    from stpipe.config.validate import validate

    if composed.definition is not None:
        composed.definition = validate(composed.definition, sources=composed.sources, base_dir=composed.base_dir)
    kind = (composed.definition or {}).get("model_type") or "SentenceTransformer"
    return ModelSpec(name=name, composed=composed, model_type=kind)


def served_models(composed: Any, settings: Mapping[str, Any], model: str | None,
                  overrides: Sequence[str], compose: Callable[[str, list[str]], Any]) -> list[ModelSpec]:
    """Every model to serve, composed (run settings checked) and validated — nothing is built. ``overrides``: the
    command line's, which apply to every model of ``serve.models`` (each entry's own come last); ``compose(model,
    overrides)``: the command line's composition (the serve verb passes its own, so serving/ sits below
    commands/)."""
    entries = settings.get("models") or {}
    if not entries:
        name = settings.get("name") or default_name(composed, model)
        return [_spec(name, composed)]
    model_keys = [o for o in overrides if o.lstrip("+~").split("=", 1)[0].split(".")[0] == "model"]
    if model is not None or model_keys:
        given = model if model is not None else model_keys[0]
        raise UsageError(f"'{given}': serve.models names the models to serve; give each model's overrides in "
                         "serve.models.NAME.overrides instead of a MODEL argument or model.* overrides")
    if settings.get("name"):
        raise UsageError("serve.name names the single served model; with serve.models the names are its keys")
    shared = [o for o in overrides if o.lstrip("+~").split("=", 1)[0].split(".")[0] not in ("serve", *SHORTHANDS)]
    specs = []
    for name, entry in entries.items():
        try:
            one = compose(entry["model"], [*shared, *(entry.get("overrides") or [])])
            specs.append(_spec(name, one))
        except ConfigError as exc:
            raise ConfigError(exc.problems, title=f"{exc.title} (serve.models.{name})") from None
    return specs


__all__ = ["EMBEDDING_TYPES", "ModelSpec", "SHORTHANDS", "check_settings", "default_name", "defaults",
           "serve_overrides", "served_models", "settings_problems", "with_defaults"]
