"""Semantic checks for CrossEncoder definitions and the Transformer's ``unpad_inputs`` (registered into
:data:`stpipe.config.checks.CHECKS`; imported at the bottom of that module). Torch-free.

* ``check.model-type`` — ``activation_fn`` on a model that is no CrossEncoder, ``truncate_dim`` /
  ``max_active_dims`` on a CrossEncoder (either would be silently ignored);
* ``check.activation`` — an ``activation_fn`` that names no ``torch.nn`` activation;
* ``check.unpad-inputs`` (a warning) — ``unpad_inputs: true`` where stpipe pads anyway, and why.

>>> [(p.code, p.path_str) for p in cross_encoder_keys({"model_type": "CrossEncoder", "truncate_dim": 8,
...                                                    "activation_fn": "sigmoyd"}, None)]
[('check.model-type', 'truncate_dim'), ('check.activation', 'activation_fn')]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from stpipe.config.checks import CheckContext, check, nodes_of_type
from stpipe.contracts.dense import activation_class
from stpipe.errors import Problem

#: the tasks sentence-transformers ever unpads (flattens) inputs for
UNPAD_TASKS = ("feature-extraction", "fill-mask")


@check("check.cross-encoder", before="check.options")
def cross_encoder_keys(defn: Mapping[str, Any], ctx: CheckContext | None) -> Iterator[Problem]:
    """Model-level keys that belong to another model type; an ``activation_fn`` that is no activation."""
    kind = defn.get("model_type") or "SentenceTransformer"
    act = defn.get("activation_fn")
    if kind != "CrossEncoder" and act is not None:
        yield Problem(code="check.model-type", path=("activation_fn",), message=f"activation_fn applies to a "
                      f"CrossEncoder only, this is a {kind}", found=repr(act),
                      hint="set model_type: CrossEncoder (a model whose modules end in 'scores'), or remove it")
    if kind == "CrossEncoder":
        for key in ("truncate_dim", "max_active_dims"):
            if defn.get(key) is not None:
                yield Problem(code="check.model-type", path=(key,), message=f"a CrossEncoder does not use {key} "
                              "(it returns scores, not embeddings)", found=repr(defn[key]),
                              expected=f"no {key} (or null)", hint=f"remove {key}")
        if isinstance(act, str):
            try:
                activation_class(act)
            except ValueError as exc:
                message, _, hint = str(exc).replace("activation_function", "activation_fn").partition("; ")
                yield Problem(code="check.activation", path=("activation_fn",), message=message, found=repr(act),
                              hint=hint or "e.g. sigmoid, identity, or null for the default")


def unpad_reason(node: Mapping[str, Any]) -> str:
    """Why a Transformer node is padded although ``unpad_inputs: true`` asks for flattened inputs."""
    task = node.get("transformer_task") or "feature-extraction"
    if task not in UNPAD_TASKS:
        return f"inputs are unpadded only for {' and '.join(UNPAD_TASKS)}, and this Transformer's task is '{task}'"
    attn = (node.get("model_kwargs") or {}).get("attn_implementation") if isinstance(
        node.get("model_kwargs"), Mapping) else None
    if not (isinstance(attn, str) and attn.startswith("flash_attention")):
        used = attn or "the default (sdpa)"
        return ("unpadding needs a flash attention implementation with variable-length kernels (model_kwargs."
                f"attn_implementation: flash_attention_2, on a CUDA GPU); this model uses {used}")
    return "stpipe does not flatten inputs (flash attention variable-length batches are not implemented); it pads"


@check("check.unpad-inputs", before="check.options")
def unpad_inputs(defn: Mapping[str, Any], ctx: CheckContext | None) -> Iterator[Problem]:
    """``unpad_inputs: true`` is a request stpipe cannot honour here: a warning with the reason (the embeddings
    are the same, computed with padding)."""
    for path, node in nodes_of_type(ctx, "Transformer") if ctx is not None else ():
        if node.get("unpad_inputs") is True:
            yield Problem(code="check.unpad-inputs", path=(*path, "unpad_inputs"), severity="warning",
                          message=f"unpad_inputs: true, but inputs will be padded: {unpad_reason(node)}",
                          found="true", hint="set unpad_inputs: null (automatic) or false to silence this warning")
