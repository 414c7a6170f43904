"""The CrossEncoder parts of sentence-transformers 6.2's directory format, read and written.

Observed from 6.2 (a ``CrossEncoder`` saved to a scratch folder): ``config_sentence_transformers.json`` holds
``model_type: "CrossEncoder"``, ``activation_fn`` (the dotted class path, ``torch.nn.modules.activation.Sigmoid``),
``prompts`` (``{}`` when none are set) and ``default_prompt_name`` — no ``similarity_fn_name``; ``modules.json`` lists
the Transformer (``transformer_task: sequence-classification``, ``module_output_name: scores``) saved in the root.

Reading also follows 6.2 for older folders: without ``activation_fn`` in the model config, the Hugging Face
``config.json``'s ``sentence_transformers.activation_fn`` (4.x/5.x saves) or ``sbert_ce_default_activation_function``
(before 4.0) is used; such a folder without ``config_sentence_transformers.json`` is a CrossEncoder. Only
``torch.*`` activation paths are honoured; any other is never imported: a warning, and the default (Sigmoid for one
label, Identity otherwise) is used, as sentence-transformers does without ``trust_remote_code``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from stpipe.errors import LoadError
from stpipe.files import read_json

logger = logging.getLogger("stpipe")

__all__ = ["activation_from_files", "config_entries", "default_cross_encoder_nodes", "is_legacy_cross_encoder",
           "saved_prompts"]


def _hf_config(root: str) -> dict[str, Any]:
    f = Path(root, "config.json")
    cfg = read_json(f) if f.is_file() else {}
    if not isinstance(cfg, dict):
        raise LoadError(f"expected a JSON object, found {type(cfg).__name__}", path=str(f))
    return cfg


def _legacy_activation(cfg: dict[str, Any]) -> Any:
    st = cfg.get("sentence_transformers")
    if isinstance(st, dict) and "activation_fn" in st:
        return st["activation_fn"]
    return cfg.get("sbert_ce_default_activation_function")


def is_legacy_cross_encoder(root: str) -> bool:
    """A folder a CrossEncoder of sentence-transformers < 6 saved: no model config, but the HF ``config.json``
    carries a CrossEncoder activation."""
    return not Path(root, "config_sentence_transformers.json").is_file() and \
        _legacy_activation(_hf_config(root)) is not None


def activation_from_files(root: str, config: dict[str, Any], where: str | None) -> str | None:
    """The saved activation's dotted path (model config, else the legacy ``config.json`` keys), or None for the
    default; a path outside ``torch.`` or no torch.nn activation is refused with a warning (never imported)."""
    from stpipe.contracts.dense import activation_class

    value, source = config.get("activation_fn"), where or str(Path(root, "config_sentence_transformers.json"))
    if value is None:
        value, source = _legacy_activation(_hf_config(root)), str(Path(root, "config.json"))
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("torch."):
        logger.warning("%s: activation_fn %r is not a torch activation; stpipe never imports code named by a "
                       "model file, so the default activation (Sigmoid for one label, else Identity) is used",
                       source, value)
        return None
    try:
        activation_class(value)
    except ValueError as exc:
        raise LoadError(f"activation_fn: {exc}", path=source) from None
    return value


def default_cross_encoder_nodes(root: str, transformer: dict[str, Any]) -> list[dict[str, Any]]:
    """The modules of a CrossEncoder folder without ``modules.json``: the checkpoint as a sequence classifier
    (6.2's default; a causal LM needs a saved ``modules.json`` with its scoring module)."""
    archs = [a for a in _hf_config(root).get("architectures") or [] if isinstance(a, str)]
    if archs and archs[0].endswith("ForCausalLM"):
        raise LoadError("a CrossEncoder folder without modules.json holds a causal LM; stpipe needs the saved "
                        "modules.json that says how its logits become a score", path=str(Path(root, "config.json")),
                        hint="save the CrossEncoder with sentence-transformers 6.x (it writes modules.json)")
    return [{**transformer, "transformer_task": "sequence-classification"}]


def saved_prompts(prompts: dict[str, str]) -> dict[str, str]:
    """The prompts a CrossEncoder writes: those set (6.2 writes ``{}`` when there are none; stpipe's pipelines
    always hold empty ``query``/``document`` prompts)."""
    return {k: v for k, v in prompts.items() if v or k not in ("query", "document")}


def config_entries(pipeline: Any, config: dict[str, Any]) -> dict[str, Any]:
    """``config_sentence_transformers.json`` of a CrossEncoder from an embedding model's ``config``: prompts as
    6.2 writes them, ``activation_fn`` added, the embedding-only keys dropped."""
    out = {k: v for k, v in config.items() if k not in ("similarity_fn_name", "truncate_dim", "max_active_dims")}
    out["prompts"] = saved_prompts(dict(pipeline.prompts))
    out["activation_fn"] = pipeline.activation_fn_name
    return out
