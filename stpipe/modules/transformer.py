"""``Transformer``: a Hugging Face model and its processor as the first module (the seed's ``Transformer``).

``transformer_task`` picks the model class: ``feature-extraction`` (``AutoModel``; encoder-only for T5-like
models), ``fill-mask`` (``AutoModelForMaskedLM``, logits → ``token_embeddings``), ``sequence-classification``
(``num_labels=1`` unless set; logits → ``scores``), ``text-generation`` / ``any-to-any`` (causal LMs, left padding,
logits → ``causal_logits``; :mod:`stpipe.modules.causal`). Inputs are routed by modality (text, image, audio,
video, chat ``message``; :mod:`stpipe.modules.audio`, :mod:`stpipe.modules.messages`) through ``AutoProcessor``;
dual encoders such as CLIP use
``get_text_features``/``get_image_features`` and produce ``sentence_embedding`` directly.

Files (sentence-transformers 6.2): the model and processor via ``save_pretrained`` plus
``sentence_bert_config.json`` (transformer_task, modality_config with ``"image+text"`` keys,
module_output_name; processing_kwargs, unpad_inputs, query_length, document_length when set).
``query_length`` / ``document_length`` cap text inputs of ``task="query"`` / ``"document"``. ``max_seq_length`` lives in
``tokenizer_config.json`` as ``model_max_length``; ``do_lower_case`` as a ``Lowercase`` normalizer in
``tokenizer.json``. Legacy config names and keys are read (see :meth:`Transformer.load`).

Stateless helpers live beside it: :mod:`stpipe.modules.transformer_setup` (parameter checks, model and
processor loading, ``modality_config`` inference, the static description) and
:mod:`stpipe.modules.transformer_inputs` (input parsing, processor calls, model-method calls).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import torch

from stpipe.contracts.positions import default_max_seq_length
from stpipe.contracts.transformer import (
    CAUSAL_TASKS,
    CONFIG_FILES,
    KWARG_DICTS,
    TOKENIZER_PATH_DEPRECATED,
    TRANSFORMER,
)
from stpipe.modules.causal import finish_causal, set_left_padding
from stpipe.modules.chat_pairs import check_pair_roles
from stpipe.modules.messages import chat_features, count_media, message_format
from stpipe.modules.modality import modality_str, normalize_modality
from stpipe.modules.module import InputModule
from stpipe.modules.transformer_config import find_config, load_arguments, read_saved_config
from stpipe.modules.transformer_inputs import (
    BOOKKEEPING,  # noqa: F401  (re-exported)
    IMAGE_SUFFIXES,  # noqa: F401  (re-exported)
    PROCESSING_KEYS,  # noqa: F401  (re-exported)
    PROCESSOR_ARG,  # noqa: F401  (re-exported)
    call_processor,
    check_processing_kwargs,
    extract_output,
    input_problem,
    merge_processing_kwargs,
    method_inputs,
    parse_inputs,
    to_messages,
)
from stpipe.modules.transformer_setup import (
    BACKENDS,  # noqa: F401  (re-exported)
    DTYPES,  # noqa: F401  (re-exported)
    DUAL_ENCODERS,  # noqa: F401  (re-exported)
    NOT_YET,  # noqa: F401  (re-exported)
    add_lowercase,
    check_backend,
    check_task,
    convert_dtype,
    dimension_from_config,
    infer_modality_config,
    is_tokenizer,
    load_model,
    load_processor,
    processor_modalities,
)

logger = logging.getLogger(__name__)

__all__ = ["CONFIG_FILES", "KWARG_DICTS", "Transformer"]


class Transformer(InputModule):
    """Hugging Face model wrapper: loading, preprocessing (tokenizer / processor) and the forward pass."""

    contract = TRANSFORMER
    config_file_name = TRANSFORMER.config_file_name
    config_keys = list(TRANSFORMER.config_keys)
    config_key_renames = dict(TRANSFORMER.config_key_renames)
    describe = staticmethod(TRANSFORMER.describe)  # one static description, shared with validation

    def __init__(
        self,
        model_name_or_path: str,
        *,
        transformer_task: str = "feature-extraction",
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        processing_kwargs: dict[str, dict[str, Any]] | None = None,
        backend: str = "torch",
        modality_config: dict[Any, dict[str, Any]] | None = None,
        module_output_name: str | None = None,
        unpad_inputs: bool | None = None,
        query_length: int | None = None,
        document_length: int | None = None,
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        tokenizer_name_or_path: str | None = None,
    ) -> None:
        super().__init__()
        self.transformer_task = check_task(transformer_task)
        self.backend = check_backend(backend)
        for name, value in (("max_seq_length", max_seq_length), ("query_length", query_length),
                            ("document_length", document_length)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.query_length, self.document_length = query_length, document_length
        self.model_name_or_path = str(model_name_or_path)
        self.processing_kwargs = check_processing_kwargs(processing_kwargs)
        self.unpad_inputs = unpad_inputs
        if unpad_inputs:
            logger.warning("unpad_inputs=True: stpipe does not flatten inputs (needs flash attention varlen); "
                           "inputs stay padded")
        self.do_lower_case = bool(do_lower_case)
        self.model_kwargs = convert_dtype(dict(model_kwargs or {}))
        self.processor_kwargs = dict(processor_kwargs or {})
        self.config_kwargs = dict(config_kwargs or {})
        if max_seq_length is not None:
            self.processor_kwargs.setdefault("model_max_length", max_seq_length)
        if self.backend == "torch":
            self.model = load_model(self.model_name_or_path, self.transformer_task, self.model_kwargs,
                                    self.config_kwargs)
        else:  # an ONNX Runtime / OpenVINO graph of the model (stpipe.modules.backend_model)
            from stpipe.modules.backend_model import load_graph_model

            self.model = load_graph_model(self.model_name_or_path, self.transformer_task, self.backend,
                                          self.model_kwargs, self.config_kwargs, tokenizer_name_or_path)
        self.processor = load_processor(tokenizer_name_or_path or self.model_name_or_path, self.processor_kwargs)
        tok = self.tokenizer if is_tokenizer(self.tokenizer) else None
        if tokenizer_name_or_path is not None:
            warnings.warn(TOKENIZER_PATH_DEPRECATED, FutureWarning, stacklevel=2)
            self.model.config.tokenizer_class = type(self.processor).__name__  # as sentence-transformers records it
        if tok is not None:
            if "model_max_length" in self.processor_kwargs:
                tok.model_max_length = self.processor_kwargs["model_max_length"]
            else:
                max_pos = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
                capped = default_max_seq_length(tok.model_max_length, max_pos)
                if capped is not None:
                    tok.model_max_length = capped
        if self.transformer_task in CAUSAL_TASKS:  # the last position must be a real token (LogitScore)
            set_left_padding(self.processor)
        self._lower_in_python = bool(do_lower_case) and not add_lowercase(tok)
        self.modality_config, self.module_output_name = infer_modality_config(
            self.model, self.processor, self.transformer_task, modality_config, module_output_name)
        self._prompt_lengths: dict[str, int] = {}
        self._pair_probes: dict[Any, str | None] = {}  # chat_pairs' verdicts per template
        self._processor_modalities = processor_modalities(self.processor)

    # ------------------------------------------------------------------------------------ properties
    @property
    def auto_model(self) -> torch.nn.Module:
        return self.model

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        if hasattr(self.processor, "tokenizer"):
            self.processor.tokenizer = value
        else:
            self.processor = value

    @property
    def modalities(self) -> list[str | tuple[str, ...]]:
        return list(self.modality_config)

    @property
    def max_seq_length(self) -> int | None:
        tok = self.tokenizer
        if tok is not None and hasattr(tok, "model_max_length"):
            return tok.model_max_length
        return getattr(self.model.config.get_text_config(), "max_position_embeddings", None)

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        """Only a tokenizer truncates: without one (an image or audio processor) the value is ignored."""
        tok = self.tokenizer
        if tok is not None and is_tokenizer(tok):
            tok.model_max_length = value

    def input_problem(self, x: Any) -> str | None:
        """Why this module cannot take input ``x`` although its modality is configured, said after "input <i>"
        (None when it can): see :func:`stpipe.modules.transformer_inputs.input_problem`."""
        return input_problem(x, self.modality_config, self._processor_modalities, self.transformer_task)

    def get_embedding_dimension(self) -> int:
        dim = dimension_from_config(self.model.config.to_dict(), self.module_output_name)
        if dim is None:
            raise ValueError(f"cannot determine the embedding dimension of '{self.model_name_or_path}' from its "
                             "config (no hidden_size, hidden_sizes, embed_dims or hidden_dim)")
        return dim

    # ------------------------------------------------------------------------------------ preprocess / forward
    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Tokenize / process a batch. kwargs: ``processing_kwargs`` (merged over the instance's), ``max_length``,
        ``task`` ("query" / "document" select ``query_length`` / ``document_length``); ``modality`` is inferred."""
        if not inputs:
            return {}
        for i, x in enumerate(inputs):
            problem = self.input_problem(x)
            if problem is not None:
                raise ValueError(f"input {i} {problem}")
        inputs, modality, extra = parse_inputs(list(inputs), self.modality_config, kwargs.get("modality"))
        pk = merge_processing_kwargs(self.processing_kwargs, kwargs.get("processing_kwargs"))
        text_defaults: dict[str, Any] = {"padding": True, "truncation": "longest_first"}
        task = kwargs.get("task")
        max_length = kwargs.get("max_length") or (self.query_length if task == "query" else
                                                  self.document_length if task == "document" else None)
        if max_length is not None:
            text_defaults["max_length"] = max_length
        if modality == "message":
            fmt = message_format(self.modality_config["message"], self.model.config.model_type, self.processor)
            convs = to_messages(inputs, prompt, fmt)
            check_pair_roles(self.processor, convs, fmt, pk.get("chat_template", {}), self._pair_probes)
            call = {**pk, "common": {"return_tensors": "pt", **pk.get("common", {})},
                    "text": {**text_defaults, **pk.get("text", {})},
                    "audio": {"padding": True, **pk.get("audio", {}), **extra.get("audio", {})},
                    "video": {**pk.get("video", {}), **extra.get("video", {})}}
            out = chat_features(self.processor, convs, call, self.max_seq_length)
            count_media(out, convs)
            out["modality"] = "message"
            return self._finish(out, pk)
        parts = modality if isinstance(modality, tuple) else (modality,)
        call: dict[str, Any] = {"return_tensors": "pt", **pk.get("common", {})}
        per_modality = {"text": text_defaults, "audio": {"padding": True}}
        for m in parts:
            call.update(per_modality.get(m, {}))
            call.update(pk.get(m, {}))
        call.update({k: v for per_modality in extra.values() for k, v in per_modality.items()})
        call.pop("logits_to_keep", None)
        columns = {m: [x[m] for x in inputs] for m in parts} if len(parts) > 1 else {modality: inputs}
        prompt_length = None
        if "text" in columns:
            texts = columns["text"]
            if prompt:
                texts = [(prompt + t[0], *t[1:]) if isinstance(t, tuple) else prompt + t for t in texts]
                prompt_length = self._prompt_length(prompt)
            if self._lower_in_python:
                texts = [tuple(s.lower() for s in t) if isinstance(t, tuple) else t.lower() for t in texts]
            columns["text"] = texts
        out = dict(call_processor(self.processor, columns, call))
        out["modality"] = modality
        if prompt_length is not None:
            out["prompt_length"] = prompt_length
        return self._finish(out, pk)

    def _finish(self, out: dict[str, Any], pk: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Causal tasks: check the left padding and pass ``logits_to_keep`` (``processing_kwargs.text``) on."""
        if self.transformer_task in CAUSAL_TASKS:
            finish_causal(out, pk, self.processor)
        return out

    def _prompt_length(self, prompt: str) -> int:
        """Tokens of the prompt alone, including a leading special token, minus a trailing one."""
        if prompt not in self._prompt_lengths:
            tok = self.tokenizer
            ids = tok(prompt.lower() if self._lower_in_python else prompt)["input_ids"]
            n = len(ids) - (1 if ids and ids[-1] in set(tok.all_special_ids) else 0)
            self._prompt_lengths[prompt] = n
        return self._prompt_lengths[prompt]

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        modality = normalize_modality(features.get("modality", "text"))
        spec = self.modality_config.get(modality)
        if spec is None:
            raise ValueError(f"modality {modality_str(modality)!r} is not configured for this Transformer; "
                             f"configured: {', '.join(str(modality_str(m)) for m in self.modality_config)}")
        method = getattr(self.model, spec["method"])
        call = method_inputs(method, features)
        path = spec.get("method_output_name")
        if "hidden_states" in ([path] if isinstance(path, str) else list(path or [])):
            call["output_hidden_states"] = True
        output = method(**call)
        value = extract_output(output, path)
        if isinstance(value, torch.Tensor) and value.dim() == 4:  # (B, C, H, W) feature maps → (B, H·W, C)
            value = value.flatten(2).transpose(1, 2)
        features[self.module_output_name] = value
        if getattr(self.model.config, "output_hidden_states", False) and getattr(output, "hidden_states", None):
            features["all_layer_embeddings"] = output.hidden_states
        return features

    # ------------------------------------------------------------------------------------ files
    def get_config_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "transformer_task": self.transformer_task,
            "modality_config": {modality_str(k): dict(v) for k, v in self.modality_config.items()},
            "module_output_name": self.module_output_name,
        }
        if self.processing_kwargs:
            config["processing_kwargs"] = self.processing_kwargs
        for key in ("unpad_inputs", "query_length", "document_length"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        os.makedirs(output_path, exist_ok=True)
        self.model.save_pretrained(output_path)
        if self.processor is not None:
            self.processor.save_pretrained(output_path)
        self.save_config(output_path)

    @classmethod
    def load_config(cls, model_name_or_path: str, subfolder: str = "", config_filename: str | None = None,
                    token: bool | str | None = None, cache_folder: str | None = None, revision: str | None = None,
                    local_files_only: bool = False) -> dict[str, Any]:
        """The saved config as :meth:`load` reads it (sentence-transformers 6.2's ``load_config``): the first of
        the legacy config names that exists, ``"image+text"`` keys as tuples, security settings dropped, and a
        pre-6 save given the task's text-only ``modality_config``; ``{}`` when there is no config file."""
        hub = dict(token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
        config = find_config(
            lambda name: super(Transformer, cls).load_config(model_name_or_path, subfolder, name, **hub),
            lambda name: cls.load_file_path(model_name_or_path, name, subfolder, **hub) is not None,
            config_filename)
        return read_saved_config(config, str(Path(model_name_or_path, subfolder)))

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             trust_remote_code: bool = False, model_kwargs: dict[str, Any] | None = None,
             processor_kwargs: dict[str, Any] | None = None, config_kwargs: dict[str, Any] | None = None,
             backend: str = "torch", init_defaults: Mapping[str, Any] | None = None,
             overrides: Mapping[str, Any] | None = None, allow_pickle: bool = False, **kwargs: Any) -> Self:
        """Saved config (:meth:`load_config`) < hub arguments < loader kwargs < ``overrides``.
        ``allow_pickle=True`` lets transformers fall back to ``pytorch_model.bin``."""
        hub_kw = dict(token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
        user = {"model_kwargs": model_kwargs, "processor_kwargs": processor_kwargs, "config_kwargs": config_kwargs}
        path, config = load_arguments(cls, model_name_or_path, subfolder,
                                      cls.load_config(model_name_or_path, subfolder, **hub_kw), hub_kw,
                                      trust_remote_code, user, backend, init_defaults, overrides, allow_pickle)
        return cls(path, **config)
