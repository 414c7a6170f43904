"""Training losses: registered by name like module types and evaluators, chosen in YAML (``loss=cosent`` picks
``conf/loss/cosent.yaml``; ``loss.scale=10`` overrides a parameter).

A loss node is ``{name: CoSENTLoss, <params>}``; the name is a registered loss (``CoSENTLoss`` or its alias
``cosent``). A loss class has

* ``schema``: JSON Schema ``properties`` of its parameters (unknown parameters are errors);
* ``min_inputs``/``max_inputs`` (text columns, in order) and ``needs_label`` (a ``score``/``label`` column):
  :func:`column_problems` checks a data set's columns against them before any weight loads;
* ``__init__(**params)`` and ``compute(embeddings, labels, features=None) -> Tensor`` (one embedding tensor per
  text column, in column order).

Built-ins: CoSENTLoss, CosineSimilarityLoss (:mod:`.pairs`), MultipleNegativesRankingLoss, SpladeLoss
(:mod:`.ranking`), MatryoshkaLoss (:mod:`.matryoshka`). A plugin adds one with :func:`register_loss` or the
``stpipe.losses`` entry-point group. The definitions follow sentence-transformers 6.2's (written here anew).

>>> loss_names()[:3]
['CoSENTLoss', 'CosineSimilarityLoss', 'MatryoshkaLoss']
>>> [p.message for p in column_problems({"name": "cosent"}, ["question", "positive"])]
["loss CoSENTLoss needs a score column ('score' or 'label'); the data has columns: question, positive"]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stpipe.errors import ConfigError, Path, Problem
from stpipe.registry import Catalogue, Spec

ENTRY_POINT_GROUP = "stpipe.losses"
TITLE = "invalid loss"
#: the names a label column may have (the others are text columns, in order)
LABEL_COLUMNS = ("score", "label")


#: the loss registry (the same mechanism as evaluators'; module types have :mod:`stpipe.registry` itself)
LOSSES = Catalogue("loss", ENTRY_POINT_GROUP, [
    Spec("CoSENTLoss", "stpipe.training.losses.pairs:CoSENTLoss", ("cosent",)),
    Spec("CosineSimilarityLoss", "stpipe.training.losses.pairs:CosineSimilarityLoss", ("cosine",)),
    Spec("MultipleNegativesRankingLoss", "stpipe.training.losses.ranking:MultipleNegativesRankingLoss", ("mnrl",)),
    Spec("SpladeLoss", "stpipe.training.losses.ranking:SpladeLoss", ("splade",)),
    Spec("MatryoshkaLoss", "stpipe.training.losses.matryoshka:MatryoshkaLoss", ("matryoshka",)),
], hint="choose one with loss=<name> (conf/loss/<name>.yaml)", title=TITLE)
register_loss = LOSSES.register
unregister_loss = LOSSES.unregister
loss_names = LOSSES.names


def loss_class(name: Any, path: Path = ("loss", "name")) -> type:
    """The loss class registered as ``name`` (or an alias); a ConfigError with the names otherwise."""
    return LOSSES.get(name, path)


def loss_problems(node: Any, base: Path = ("loss",)) -> list[Problem]:
    """The problems of a loss node: a mapping with a known ``name`` and the parameters that loss takes."""
    from stpipe.config.schema_problems import NodeValidator, schema_problems

    if not isinstance(node, Mapping):
        found = "nothing" if node is None else type(node).__name__
        return [Problem(code="schema.type", path=base, message=f"a loss is a mapping, found {found}",
                        hint="choose one with loss=<name> (conf/loss/<name>.yaml), e.g. loss=cosent")]
    try:
        cls = loss_class(node.get("name"), base + ("name",))
    except ConfigError as exc:
        return exc.problems
    schema = {"type": "object", "properties": {"name": {"type": "string"}, **getattr(cls, "schema", {})},
              "additionalProperties": False}
    problems = schema_problems(NodeValidator(schema), dict(node), base, f"loss {cls.__name__}")
    inner = getattr(cls, "inner_loss_key", None)
    if inner and not problems and node.get(inner) is not None:
        problems += loss_problems(node[inner], base + (inner,))
    return problems


def column_problems(node: Mapping[str, Any], columns: Sequence[str], base: Path = ("loss",)) -> list[Problem]:
    """What a loss needs of the data's columns: enough text columns, and a label column when it takes labels."""
    cls = loss_class(node.get("name"), base + ("name",))
    inner = getattr(cls, "inner_loss_key", None)
    if inner and isinstance(node.get(inner), Mapping):  # a wrapper needs what its loss needs
        return column_problems(node[inner], columns, base + (inner,))
    texts = [c for c in columns if c not in LABEL_COLUMNS]
    label = [c for c in columns if c in LABEL_COLUMNS]
    have = ", ".join(columns) or "none"
    name = cls.__name__
    out = []
    if cls.needs_label and not label:
        out.append(Problem(code="loss.columns", path=base, message=f"loss {name} needs a score column ('score' or "
                           f"'label'); the data has columns: {have}",
                           hint="name the score column 'score' (data.columns: {score: <your column>}), or choose a "
                           "loss for unscored data (e.g. loss=mnrl)"))
    if not cls.needs_label and label:
        out.append(Problem(code="loss.columns", path=base, message=f"loss {name} takes no score, but the data has "
                           f"the column '{label[0]}'", hint="drop it with data.columns, or choose a loss for "
                           "scored pairs (loss=cosent, loss=cosine)"))
    lo, hi = cls.min_inputs, cls.max_inputs
    if len(texts) < lo or (hi is not None and len(texts) > hi):
        want = f"{lo}" if lo == hi else f"{lo} to {hi}" if hi is not None else f"at least {lo}"
        missing = "" if len(texts) >= lo else f" (missing: {', '.join(cls.input_names[len(texts):lo])})"
        out.append(Problem(code="loss.columns", path=base, message=f"loss {name} needs {want} text columns"
                           f"{missing}; the data has {len(texts)}: {', '.join(texts) or 'none'}",
                           hint="select the columns with data.columns (a list, or {new_name: file_column})"))
    return out


def build_loss(node: Mapping[str, Any]) -> Any:
    """The loss object of a checked loss node (``loss_problems`` empty)."""
    problems = loss_problems(node)
    if problems:
        raise ConfigError(problems, title=TITLE)
    params = {k: v for k, v in node.items() if k != "name"}
    cls = loss_class(node["name"])
    inner = getattr(cls, "inner_loss_key", None)
    if inner:
        params[inner] = build_loss(params[inner])
    return cls(**params)


__all__ = ["LABEL_COLUMNS", "build_loss", "column_problems", "loss_class", "loss_names", "loss_problems",
           "register_loss", "unregister_loss"]
