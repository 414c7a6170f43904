"""What the end of the graph must hold for the model type (part of stage 3, :mod:`stpipe.config.graph`).

A SentenceTransformer or SparseEncoder returns ``sentence_embedding``, a CrossEncoder ``scores``. When the walk
ends without that feature:

* ``graph.unconsumed`` — a module's task output (a ``sequence-classification`` Transformer's ``scores``, a causal
  LM's ``causal_logits``) reaches the end with nothing downstream reading it and it is not what the model type
  returns: reported at the module that produced it (e.g. ``modules[0].transformer_task``), with the fix;
* ``graph.no-output`` — otherwise (the pipeline never produces the feature the model type returns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stpipe.errors import Problem, format_path

#: model type → the feature its ``encode`` / ``predict`` returns
RETURNS = {"SentenceTransformer": "sentence_embedding", "SparseEncoder": "sentence_embedding", "CrossEncoder": "scores"}
#: outputs of a Transformer task that only some model types (or a later module) use → who uses them
TASK_OUTPUTS = {"scores": "a CrossEncoder (model_type: CrossEncoder)",
                "causal_logits": "a module that turns logits into scores or embeddings (e.g. a logit-score module)"}
#: task outputs that must be read by a later module on every path (a Flow tracks them as ``unread``) → the fix
MUST_CONSUME = {"causal_logits": "add a LogitScore after it (a reranker's score from chosen tokens' logits), or, "
                                 "for embeddings, use transformer_task: feature-extraction with a Pooling "
                                 "(pooling_mode: lasttoken)"}
_FIX = {"sentence_embedding": "add a Pooling after the Transformer (encode() returns sentence embeddings)",
        "scores": "end the modules in 'scores': a Transformer with transformer_task: sequence-classification, or a "
                  "module with module_output_name: scores"}


def output_problems(definition: Mapping[str, Any], features: Mapping[str, Any], trace: Sequence[Any],
                    unread: Mapping[str, Sequence[Any]] | None = None) -> list[Problem]:
    """The problems of a walk that ended with ``features`` (``trace``: the visited nodes, in order; ``unread``: a
    :data:`MUST_CONSUME` feature → the path of the module that produced it, on a path where nothing read it)."""
    if unread:
        return [Problem(code="graph.unconsumed", path=tuple(where) + ("transformer_task",),
                        message=f"this module's output '{key}' is never read: no module after it turns it into an "
                                "embedding or a score", expected=f"a module that reads '{key}'",
                        found="nothing reads it", hint=MUST_CONSUME[key])
                for key, where in unread.items()]
    kind = definition.get("model_type") or "SentenceTransformer"
    want = RETURNS.get(kind, "sentence_embedding")
    if want in features or not definition.get("modules"):
        return []
    for key, user in TASK_OUTPUTS.items():
        if key == want or key not in features:
            continue
        entry = next((t for t in reversed(trace) if key in getattr(t, "produced", {})), None)
        path = tuple(entry.path) if entry is not None else ("modules",)
        task_param = entry is not None and entry.type == "Transformer"
        where = f"{format_path(path)} ({entry.type})" if entry is not None else "a module"
        hint = ("set model_type: CrossEncoder to return scores, or use transformer_task: feature-extraction and a "
                "Pooling for embeddings" if key == "scores" and kind != "CrossEncoder" else
                f"add {user} after it, or change the task")
        return [Problem(code="graph.unconsumed", path=path + (("transformer_task",) if task_param else ()),
                        message=f"{where} produces '{key}', which no later module reads, and a {kind} returns "
                                f"'{want}', not '{key}'", expected=f"'{want}' at the end of the modules",
                        found=", ".join(sorted(features)), hint=hint)]
    return [Problem(code="graph.no-output", path=("modules",),
                    message=f"the pipeline never produces '{want}'" + (f" (what a {kind} returns)" if kind ==
                                                                       "CrossEncoder" else ""),
                    hint=_FIX[want])]
