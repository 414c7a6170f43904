"""Evaluators: a model and a data set → metrics. Registered by name like module types, chosen in YAML.

A data config (``conf/data/<name>.yaml``) names its evaluator (``evaluator: sts``). The built-ins are listed
here eagerly: ``sts`` (:class:`STSEvaluator`), ``retrieval`` (:class:`~stpipe.experiments.retrieval.
RetrievalEvaluator`) and ``reranking`` (CrossEncoders: :class:`~stpipe.experiments.reranking.RerankingEvaluator`);
a plugin adds one with :func:`register_evaluator` or the ``stpipe.evaluators``
entry-point group, mirroring :mod:`stpipe.registry`. An evaluator class has

* ``check_data(config) -> Iterable[Problem]`` (a classmethod): the data set's problems, reading no model;
* ``__init__(config)`` and ``__call__(pipeline, *, batch_size, show_progress_bar) -> dict``: the result
  ``{"evaluator", "data", "main_metric", "metrics": {name: float}, "n"}``, JSON-serialisable;
* ``schema`` (optional): JSON Schema ``properties`` of its own keys in the data config (unknown keys are then
  errors); without it, any further key is accepted.

:func:`evaluate` runs the evaluator a data config names.

>>> evaluator_names()[:3]
['reranking', 'retrieval', 'sts']
>>> try:
...     evaluator_class("retreival")
... except ConfigError as e:
...     print(e.problems[0].message, "-", e.problems[0].hint)
unknown evaluator 'retreival' - did you mean 'retrieval'?
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from stpipe.errors import ConfigError, Problem
from stpipe.experiments.data import TITLE, DataConfig, collect, data_config_from, raise_problems
from stpipe.experiments.metrics import pearson, spearman
from stpipe.registry import Catalogue, Spec

ENTRY_POINT_GROUP = "stpipe.evaluators"


#: the evaluator registry (the same mechanism as losses'; module types have :mod:`stpipe.registry` itself)
EVALUATORS = Catalogue("evaluator", ENTRY_POINT_GROUP, [
    Spec("sts", "stpipe.experiments.evaluators:STSEvaluator"),
    Spec("retrieval", "stpipe.experiments.retrieval:RetrievalEvaluator"),
    Spec("reranking", "stpipe.experiments.reranking:RerankingEvaluator"),  # CrossEncoders
], hint="plugins register evaluators in the 'stpipe.evaluators' entry-point group", title=TITLE,
    default_name=lambda c: getattr(c, "name", None) or c.__name__)
register_evaluator = EVALUATORS.register
unregister_evaluator = EVALUATORS.unregister
evaluator_names = EVALUATORS.names


def evaluator_class(name: str, path: tuple = ("evaluator",)) -> type:
    """The evaluator class registered as ``name``; a ConfigError with the names and a "did you mean" otherwise."""
    return EVALUATORS.get(name, path)


class Evaluator:
    """Base class of evaluators (optional: any class with the same methods registers)."""

    name: ClassVar[str] = ""
    #: JSON Schema properties of this evaluator's own keys in a data config (None: any key accepted)
    schema: ClassVar[Mapping[str, Any] | None] = None
    builtin: ClassVar[bool] = False

    def __init__(self, config: DataConfig) -> None:
        self.config = config

    @classmethod
    def check_data(cls, config: DataConfig) -> Iterable[Problem]:
        """The problems of the data set (read line by line; no model)."""
        return []

    def __call__(self, pipeline: Any, *, batch_size: int = 32, show_progress_bar: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def result(self, metrics: Mapping[str, float | None], main_metric: str, n: int,
               reasons: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
        """The result dict every evaluator returns. A metric that is not a finite number (a correlation of
        constant scores is NaN) is never reported as a number: its value is None (JSON null) and
        ``undefined[name]`` says why (``reasons[name]``, or that it is not finite)."""
        values, undefined = defined_metrics(metrics, reasons)
        out = {"evaluator": self.name, "data": self.config.name, "main_metric": main_metric, "metrics": values,
               "n": int(n), **extra}
        if undefined:
            out["undefined"] = undefined
        return out


def defined_metrics(metrics: Mapping[str, Any], reasons: Mapping[str, str] | None = None,
                    ) -> tuple[dict[str, float | None], dict[str, str]]:
    """``(metrics, undefined)``: each finite value as a float; a NaN, infinite or missing one as None, with its
    reason in ``undefined``.

    >>> defined_metrics({"a": 1, "b": float("nan")}, {"b": "the scores are constant"})
    ({'a': 1.0, 'b': None}, {'b': 'the scores are constant'})
    """
    import math

    values: dict[str, float | None] = {}
    undefined: dict[str, str] = {}
    for k, v in metrics.items():
        f = float(v) if isinstance(v, int | float | np.floating | np.integer) and not isinstance(v, bool) else None
        if f is None or not math.isfinite(f):
            values[k] = None
            undefined[k] = (reasons or {}).get(k) or f"the value is not a finite number ({v!r})"
        else:
            values[k] = f
    return values, undefined


class STSEvaluator(Evaluator):
    """Pearson and Spearman correlation between the gold scores and the similarity of each pair's embeddings,
    per similarity function (``pearson_cosine``, ``spearman_cosine``, … as sentence-transformers'
    ``EmbeddingSimilarityEvaluator`` names them); the main metric is ``spearman_<main_similarity>``."""

    name = "sts"
    builtin = True

    @staticmethod
    def _range_problems(config: DataConfig) -> list[Problem]:
        rng = config.get("score_range")
        if rng is not None and float(rng[0]) >= float(rng[1]):
            return [config.problem("data.score-range", f"score_range [{rng[0]}, {rng[1]}] is empty",
                                   key="score_range", hint="[min, max] with min < max, e.g. [0, 5]")]
        return []

    @classmethod
    def check_data(cls, config: DataConfig) -> Iterable[Problem]:
        from stpipe.experiments.readers import iter_sts

        return cls._range_problems(config) or collect(iter_sts(config), config)

    def __call__(self, pipeline: Any, *, batch_size: int = 32, show_progress_bar: bool = False) -> dict[str, Any]:
        from stpipe.experiments.readers import iter_sts
        from stpipe.similarity import SIMILARITY_NAMES, SIMILARITY_PAIRWISE

        problems = self._range_problems(self.config)
        if problems:
            raise ConfigError(problems, title=TITLE)
        pairs = raise_problems(iter_sts(self.config), self.config)
        names = list(self.config.get("similarity_fn_names", SIMILARITY_NAMES))
        main = self.config.get("main_similarity", "cosine" if "cosine" in names else names[0])
        if main not in names:
            names.append(main)
        kw = {"batch_size": batch_size, "show_progress_bar": show_progress_bar, "convert_to_numpy": True}
        emb1 = pipeline.encode([p.sentence1 for p in pairs], **kw)
        emb2 = pipeline.encode([p.sentence2 for p in pairs], **kw)
        if hasattr(emb1, "to_dense"):  # a SparseEncoder's sparse tensors
            emb1, emb2 = emb1.to_dense(), emb2.to_dense()
        gold = np.array([p.score for p in pairs], dtype=np.float64)
        metrics: dict[str, float] = {}
        reasons: dict[str, str] = {}
        for fn in names:
            scores = SIMILARITY_PAIRWISE[fn](emb1, emb2).detach().cpu().double().numpy()
            metrics[f"pearson_{fn}"] = pearson(gold, scores)
            metrics[f"spearman_{fn}"] = spearman(gold, scores)
            why = _constant_reason(gold, scores, fn)
            if why:
                reasons[f"pearson_{fn}"] = reasons[f"spearman_{fn}"] = why
        return self.result(metrics, f"spearman_{main}", len(pairs), reasons)


def _constant_reason(gold: np.ndarray, scores: np.ndarray, fn: str) -> str | None:
    """Why a correlation of ``gold`` and ``scores`` is undefined: one side non-finite or constant; else None."""
    if not np.isfinite(scores).all():
        return f"the model's {fn} scores are not all finite numbers (NaN or infinite embeddings)"
    if scores.size and np.ptp(scores) == 0:
        return (f"the model gave every pair the same {fn} score ({scores[0]:.6g}): a correlation with constant "
                "scores is undefined")
    if gold.size and np.ptp(gold) == 0:
        return "every gold score of the data is the same: a correlation with constant scores is undefined"
    return None


def evaluator_for(data: DataConfig | Mapping[str, Any]) -> Any:
    """The evaluator instance a data config names (the node is checked first; its data is not read yet)."""
    config = data if isinstance(data, DataConfig) else data_config_from(data)
    return evaluator_class(config.evaluator, path=config.base + ("evaluator",))(config)


def evaluate(pipeline: Any, data: DataConfig | Mapping[str, Any] | str, *, batch_size: int = 32,
             show_progress_bar: bool = False) -> dict[str, Any]:
    """Evaluate ``pipeline`` on a data set: a :class:`DataConfig`, a data node (mapping), or the name of a data
    set of ``conf/data/`` (``"stsb-dev"``). Returns the evaluator's result dict; a ConfigError when the data set
    has problems (raised before anything is encoded)."""
    if isinstance(data, str):
        from stpipe.experiments.data import load_data_config

        data = load_data_config(data)
    return evaluator_for(data)(pipeline, batch_size=batch_size, show_progress_bar=show_progress_bar)


def render_result(result: Mapping[str, Any]) -> str:
    """A result as text: a title line, then one ``name  value`` line per metric (the main metric marked ``*``)."""
    head = f"{result.get('evaluator', '?')} on {result.get('data', '?')} (n={result.get('n', '?')})"
    width = max((len(k) for k in result["metrics"]), default=0)
    lines = [head]
    undefined = result.get("undefined") or {}
    for k, v in result["metrics"].items():
        mark = "*" if k == result.get("main_metric") else " "
        value = f"{v:.4f}" if isinstance(v, int | float) else f"undefined: {undefined.get(k, 'no value')}"
        lines.append(f"{mark} {k:<{width}}  {value}")
    for warning in result.get("warnings") or []:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)
