"""Training a declared model: ``stpipe train [MODEL] data=… loss=… [training.*=…]`` and :func:`train`.

Built on transformers' ``Trainer`` (accelerate underneath: ``accelerate launch -m stpipe.cli train …`` runs the
same command on several processes). The pieces: the settings and their checks (:mod:`.config`,
``schemas/training.schema.json``), the training data (:mod:`.data`), the loss registry (:mod:`.losses`), the
engine (:mod:`.trainer`: collation through Router routes, learning-rate groups, seeded order, checkpoints in
sentence-transformers' format), callbacks (:mod:`.callbacks`) and one run (:mod:`.run`)::

    import stpipe
    pipe = stpipe.build("conf/model/minilm.yaml")
    result = stpipe.train(pipe, data={"path": "stsb-train", "format": "stsb"}, loss={"name": "CoSENTLoss"},
                          output_dir="out/cosent", eval_data="stsb-dev", learning_rate=2e-5)
    result["metrics"]["spearman_cosine"], result["model"]    # the final dev metric, the saved model

Everything is checked before training starts (the data file line by line, the loss's columns).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def train(pipeline: Any, data: Mapping[str, Any] | str, loss: Mapping[str, Any] | str, *,
          output_dir: str | Path, device: str | None = None, **settings: Any) -> dict[str, Any]:
    """Fine-tune ``pipeline`` (a :class:`stpipe.Pipeline`) in place and save it to ``output_dir/model``.

    ``data``: a training data node (``{"path", "format", "columns", "score_range"}``) or a path; ``loss``: a loss
    node (``{"name": "CoSENTLoss", "scale": 20}``) or a name; ``settings``: keys of
    ``conf/training/default.yaml`` (``learning_rate``, ``router_mapping``, ``eval_data`` …). Returns
    ``{"main_metric", "metrics", "global_step", "model", …}``; a ConfigError before training when anything is
    wrong."""
    from stpipe.training.config import plan as make_plan
    from stpipe.training.run import fit

    loss_node = {"name": loss} if isinstance(loss, str) else dict(loss)
    p = make_plan(settings, loss_node, data)
    result = fit(pipeline, p, output_dir, device=device)
    result.pop("trainer", None)
    return result


__all__ = ["train"]
