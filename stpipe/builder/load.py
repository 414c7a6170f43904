"""Loading a saved model: the folder is composed into a definition by the codec
(:func:`stpipe.formats.st.to_definition`: JSON only, no weights), the caller's settings and overrides are applied,
and the definition is built like any other (:func:`stpipe.builder.nodes.build_definition`) — the one door."""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from stpipe.builder.definition import apply_overrides
from stpipe.builder.nodes import build_definition, torch_dtype_of
from stpipe.contracts.pipeline import other_truncation_key
from stpipe.errors import ConfigError
from stpipe.formats.st import load_error, locate, read_modules_json, to_definition
from stpipe.pipeline import Pipeline


def load(
    path: str | os.PathLike,
    *,
    device: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    token: bool | str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    processor_kwargs: dict[str, Any] | None = None,
    config_kwargs: dict[str, Any] | None = None,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
    similarity_fn_name: str | None = None,
    truncate_dim: int | None = None,
    max_active_dims: int | None = None,
    dtype: str | None = None,
    backend: str | None = None,
    overrides: Sequence[str] = (),
) -> Pipeline:
    """Load a sentence-transformers model directory (or a cached hub id, or the bundled model's name).

    The one loading path: the directory becomes a model definition (:func:`to_definition`, as for ``stpipe
    import`` / ``stpipe encode DIR``) that :func:`stpipe.builder.build` builds.
    ``model_kwargs``/``processor_kwargs``/``config_kwargs`` (and ``token``/``revision``/``local_files_only``) go to
    every Transformer and win over the saved values; ``prompts``/``default_prompt_name``/``similarity_fn_name``/
    ``truncate_dim``/``max_active_dims`` win over the saved values (saved prompts fill only the names not given).
    ``pytorch_model.bin`` files are refused unless ``allow_pickle=True``; custom module types need
    ``trust_remote_code=True`` and a registration. Security settings come only from these arguments, never from
    the files being loaded. ``dtype`` (fp32 | bf16 | fp16 | auto) is the precision to run in (default: as saved).
    ``backend`` ("onnx" / "openvino") runs every Transformer on its saved graph
    (``onnx/model.onnx``, ``openvino/openvino_model.xml``; see :mod:`stpipe.modules.backend_model`). A directory
    written by ``stpipe export … format=onnx|openvino`` is built from its manifest's definition
    (:func:`stpipe.formats.exported.to_definition`: GraphEncoder nodes running its graphs). ``overrides``
    (``modules.0.max_seq_length=128``, the command line's grammar) apply to the saved definition, as
    ``stpipe encode DIR model.modules.0.max_seq_length=128`` does.
    """
    torch_dtype_of(dtype, device)  # a bad dtype is a ConfigError naming `dtype`, before any file is read

    root = locate(path, token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
    definition = to_definition(root, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    if overrides:  # composed as the command line does; interpolations are resolved here, once
        definition = apply_overrides(definition, overrides)
    definition["prompts"] = {**definition["prompts"], **(prompts or {})}
    given = {"default_prompt_name": default_prompt_name, "similarity_fn_name": similarity_fn_name,
             "truncate_dim": truncate_dim, "max_active_dims": max_active_dims}
    definition.update({k: v for k, v in given.items() if v is not None})
    if dtype is not None:
        definition["dtype"] = dtype
    definition.pop(other_truncation_key(definition["model_type"]), None)
    shared = {k: v for k, v in (("token", token), ("revision", revision), ("local_files_only", local_files_only))
              if v not in (None, False)}
    caller = {"model_kwargs": model_kwargs, "processor_kwargs": processor_kwargs, "config_kwargs": config_kwargs}
    # the caller's kwargs may be Python values (a torch.dtype, a quantization config), not YAML; and a saved model
    # is not held to the static checks of a hand-written definition (a custom module may not describe itself):
    # like sentence-transformers, the constructors and loaders check what they read
    _with_caller_kwargs(definition["modules"], {k: {**shared, **(v or {})} for k, v in caller.items()}, backend)
    try:
        data = definition if overrides else apply_overrides(definition, ())  # plain; saved text stays literal
        pipeline = build_definition(data, copy.deepcopy(data), device=device, trust_remote_code=trust_remote_code,
                                    allow_pickle=allow_pickle, base_dir=root)
    except ConfigError as exc:
        raise load_error(exc, root) from None
    return _with_saved_names(pipeline, read_modules_json(root), device)


def _with_caller_kwargs(nodes: list[Any], kwargs: dict[str, dict[str, Any]], backend: str | None = None) -> None:
    """Merge the caller's Hugging Face kwargs (and ``backend``) into every Transformer node (Router routes too)."""
    for node in nodes:
        if not isinstance(node, dict):
            continue
        if node.get("type") == "Transformer":
            if backend is not None:
                node["backend"] = backend
            for key, extra in kwargs.items():
                if extra:
                    node[key] = {**(node.get(key) or {}), **extra}
        for route in (node.get("sub_modules") or {}).values() if isinstance(node.get("sub_modules"), dict) else ():
            _with_caller_kwargs(route if isinstance(route, list) else [], kwargs, backend)


def _with_saved_names(pipeline: Pipeline, entries: list[dict[str, Any]] | None, device: str | None) -> Pipeline:
    """The pipeline with ``modules.json``'s module names and "kwargs" (the definition does not carry them)."""
    if not entries:
        return pipeline
    names = [e["name"] for e in entries]
    module_kwargs = {e["name"]: list(e["kwargs"]) for e in entries if e.get("kwargs")}
    if names == list(pipeline._modules) and not module_kwargs:
        return pipeline
    extra = ({"activation_fn": pipeline.activation_fn} if pipeline.model_type == "CrossEncoder" else
             {"similarity_fn_name": pipeline.similarity_fn_name, "truncate_dim": pipeline.truncate_dim,
              "max_active_dims": pipeline.max_active_dims})
    return type(pipeline)(OrderedDict(zip(names, pipeline._modules.values(), strict=True)), name=pipeline.name,
                          model_type=pipeline.model_type, prompts=pipeline.prompts,
                          default_prompt_name=pipeline.default_prompt_name, device=device,
                          definition=pipeline.definition, module_kwargs=module_kwargs, **extra)


