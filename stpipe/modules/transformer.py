"""``Transformer``: a Hugging Face model and its processor as the first module (the seed's ``Transformer``).

``transformer_task`` picks the model class: ``feature-extraction`` (``AutoModel``; encoder-only for T5-like
models), ``fill-mask`` (``AutoModelForMaskedLM``, logits → ``token_embeddings``), ``sequence-classification``
(``num_labels=1`` unless set; logits → ``scores``). Inputs are routed by modality (text, image, audio,
video, chat ``message``) through ``AutoProcessor``; dual encoders such as CLIP use
``get_text_features``/``get_image_features`` and produce ``sentence_embedding`` directly.

Files (sentence-transformers 6.2): the model and processor via ``save_pretrained`` plus
``sentence_bert_config.json`` (transformer_task, modality_config with ``"image+text"`` keys,
module_output_name; processing_kwargs, unpad_inputs, query_length, document_length when set).
``query_length`` / ``document_length`` cap text inputs of ``task="query"`` / ``"document"``. ``max_seq_length`` lives in
``tokenizer_config.json`` as ``model_max_length``; ``do_lower_case`` as a ``Lowercase`` normalizer in
``tokenizer.json``. Legacy config names and keys are read (see :meth:`Transformer.load`).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import torch

from stpipe.config.errors import LoadError, did_you_mean
from stpipe.modules.modality import MODALITIES, infer_modality, modality_str, normalize_modality
from stpipe.modules.module import FeatureIO, InputModule

logger = logging.getLogger(__name__)

#: task → (transformers auto class, default method output, module output feature)
TASKS: dict[str, tuple[str, str, str]] = {
    "feature-extraction": ("AutoModel", "last_hidden_state", "token_embeddings"),
    "fill-mask": ("AutoModelForMaskedLM", "logits", "token_embeddings"),
    "sequence-classification": ("AutoModelForSequenceClassification", "logits", "scores"),
}
NOT_YET = ("text-generation", "any-to-any", "retrieval")
BACKENDS = ("torch", "onnx", "openvino")
ENCODER_ONLY = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel",
                "longt5": "LongT5EncoderModel", "switch_transformers": "SwitchTransformersEncoderModel",
                "udop": "UdopEncoderModel", "t5gemma": "T5GemmaEncoderModel"}
CONFIG_FILES = ("sentence_bert_config.json", "sentence_roberta_config.json", "sentence_distilbert_config.json",
                "sentence_camembert_config.json", "sentence_albert_config.json",
                "sentence_xlm-roberta_config.json", "sentence_xlnet_config.json")
KWARG_DICTS = ("model_kwargs", "processor_kwargs", "config_kwargs")


def check_task(task: Any) -> str:
    if task in TASKS:
        return task
    if task in NOT_YET:
        raise ValueError(f"transformer_task '{task}' is not supported yet; supported: {', '.join(TASKS)}")
    hint = did_you_mean(str(task), [*TASKS, *NOT_YET])
    raise ValueError(f"unknown transformer_task {task!r}; valid tasks: {', '.join([*TASKS, *NOT_YET])}"
                     + (f" ({hint})" if hint else ""))


def check_backend(backend: Any) -> str:
    if backend == "torch":
        return backend
    what = "is not supported yet" if backend in BACKENDS else "is unknown"
    raise ValueError(f"backend {backend!r} {what}: stpipe supports only the 'torch' backend for now")


def _returns_field(fn: Any, name: str) -> bool:
    """Whether ``fn``'s return annotation is a ModelOutput with field ``name`` (True when unknowable)."""
    try:
        ret = typing.get_type_hints(fn).get("return")
    except Exception:
        return True
    if ret is None:
        return True
    for c in (ret, *typing.get_args(ret)):
        if isinstance(c, type) and dataclasses.is_dataclass(c) and name in {f.name for f in dataclasses.fields(c)}:
            return True
    return False


class Transformer(InputModule):
    """Hugging Face model wrapper: loading, preprocessing (tokenizer / processor) and the forward pass."""

    config_file_name = "sentence_bert_config.json"
    config_keys = ["transformer_task", "modality_config", "module_output_name", "processing_kwargs",
                   "unpad_inputs", "query_length", "document_length"]
    config_key_renames = {"model_args": "model_kwargs", "tokenizer_args": "processor_kwargs",
                          "config_args": "config_kwargs"}

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
        self.processing_kwargs = _check_processing_kwargs(processing_kwargs)
        self.unpad_inputs = unpad_inputs
        if unpad_inputs:
            logger.warning("unpad_inputs=True: stpipe does not flatten inputs (needs flash attention varlen); "
                           "inputs stay padded")
        self.do_lower_case = bool(do_lower_case)
        self.model_kwargs = _convert_dtype(dict(model_kwargs or {}))
        self.processor_kwargs = dict(processor_kwargs or {})
        self.config_kwargs = dict(config_kwargs or {})
        if max_seq_length is not None:
            self.processor_kwargs.setdefault("model_max_length", max_seq_length)
        self.model = self._load_model()
        self.processor = _load_processor(tokenizer_name_or_path or self.model_name_or_path, self.processor_kwargs)
        tok = self.tokenizer
        if tok is not None:
            if "model_max_length" in self.processor_kwargs:
                tok.model_max_length = self.processor_kwargs["model_max_length"]
            else:
                max_pos = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
                if isinstance(max_pos, int) and max_pos != -1:
                    tok.model_max_length = min(tok.model_max_length, max_pos)
        self._lower_in_python = bool(do_lower_case) and not _add_lowercase(tok)
        self.modality_config, self.module_output_name = self._modality_setup(modality_config, module_output_name)
        self._prompt_lengths: dict[str, int] = {}

    # ------------------------------------------------------------------------------------ loading
    def _load_model(self) -> torch.nn.Module:
        import transformers

        try:
            config = transformers.AutoConfig.from_pretrained(self.model_name_or_path, **self.config_kwargs)
        except (OSError, ValueError) as exc:
            raise LoadError(f"cannot load the Hugging Face config of '{self.model_name_or_path}': {exc}",
                            hint="model_name_or_path must be a local model directory or a model in the "
                                 "Hugging Face cache") from exc
        if "use_cache" not in self.config_kwargs:
            for c in [config, *(getattr(config, k, None) for k in getattr(config, "sub_configs", {}))]:
                if c is not None and hasattr(c, "use_cache"):  # no KV cache for embedding
                    c.use_cache = False
        auto_name = TASKS[self.transformer_task][0]
        if self.transformer_task == "sequence-classification" and "num_labels" not in self.config_kwargs and \
                not any(a.endswith("ForSequenceClassification") for a in (config.architectures or [])):
            config.num_labels = 1
        cls = getattr(transformers, auto_name)
        if self.transformer_task == "feature-extraction" and getattr(config, "is_encoder_decoder", False):
            cls = getattr(transformers, ENCODER_ONLY.get(config.model_type, ""), cls)
        try:
            return cls.from_pretrained(self.model_name_or_path, config=config, **self.model_kwargs)
        except (OSError, ValueError) as exc:
            raise LoadError(f"cannot load the model '{self.model_name_or_path}' ({cls.__name__}): {exc}",
                            hint="check model_name_or_path, transformer_task and model_kwargs") from exc

    def _modality_setup(self, modality_config: Any, module_output_name: str | None
                        ) -> tuple[dict[Any, dict[str, Any]], str]:
        if modality_config is not None:
            if not module_output_name:
                raise ValueError("modality_config requires module_output_name too (the feature this module "
                                 "writes, e.g. 'token_embeddings' or 'sentence_embedding')")
            return _check_modality_config(modality_config), module_output_name
        _, method_out, feature = TASKS[self.transformer_task]
        modalities = _processor_modalities(self.processor)
        if _returns_field(self.model.forward, method_out):
            config = {m: {"method": "forward", "method_output_name": method_out} for m in modalities}
        else:  # a dual encoder such as CLIP: one get_<modality>_features method per modality
            config, feature = {}, "sentence_embedding"
            for m in modalities:
                fn = getattr(self.model, f"get_{m}_features", None)
                if fn is not None:
                    out = "pooler_output" if _returns_field(fn, "pooler_output") else None
                    config[m] = {"method": f"get_{m}_features", "method_output_name": out}
        if _has_chat_template(self.processor) and "message" not in config and "text" in config:
            fmt = "flat" if _is_tokenizer(self.processor) else "structured"
            config["message"] = {**config["text"], "format": fmt}
        if module_output_name and module_output_name != feature:
            raise ValueError(f"module_output_name={module_output_name!r} needs a modality_config that produces it; "
                             f"without one this module writes '{feature}'")
        return config, feature

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
    def max_seq_length(self, value: int) -> None:
        self.tokenizer.model_max_length = value

    def get_embedding_dimension(self) -> int:
        dim = _dimension_from_config(self.model.config.to_dict(), self.module_output_name)
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
        inputs, modality, extra = _parse_inputs(list(inputs), self.modality_config, kwargs.get("modality"))
        pk = _merge_processing_kwargs(self.processing_kwargs, kwargs.get("processing_kwargs"))
        text_defaults: dict[str, Any] = {"padding": True, "truncation": "longest_first"}
        task = kwargs.get("task")
        max_length = kwargs.get("max_length") or (self.query_length if task == "query" else
                                                  self.document_length if task == "document" else None)
        if max_length is not None:
            text_defaults["max_length"] = max_length
        if modality == "message":
            convs = _to_messages(inputs, prompt, self.modality_config["message"].get("format", "flat"))
            call = {"return_tensors": "pt", **pk.get("common", {}), **text_defaults, **pk.get("text", {}),
                    **pk.get("chat_template", {})}
            call.pop("logits_to_keep", None)
            call["truncation"] = bool(call.get("truncation"))
            out = dict(self.processor.apply_chat_template(convs, tokenize=True, return_dict=True, **call))
            out["modality"] = "message"
            return out
        parts = modality if isinstance(modality, tuple) else (modality,)
        call: dict[str, Any] = {"return_tensors": "pt", **pk.get("common", {})}
        per_modality = {"text": text_defaults, "audio": {"padding": True}}
        for m in parts:
            call.update(per_modality.get(m, {}))
            call.update(pk.get(m, {}))
        call.update(extra)
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
        out = dict(_call_processor(self.processor, columns, call))
        out["modality"] = modality
        if prompt_length is not None:
            out["prompt_length"] = prompt_length
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
        call = _method_inputs(method, features)
        path = spec.get("method_output_name")
        if "hidden_states" in ([path] if isinstance(path, str) else list(path or [])):
            call["output_hidden_states"] = True
        output = method(**call)
        value = _extract(output, path)
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
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             trust_remote_code: bool = False, model_kwargs: dict[str, Any] | None = None,
             processor_kwargs: dict[str, Any] | None = None, config_kwargs: dict[str, Any] | None = None,
             backend: str = "torch", init_defaults: Mapping[str, Any] | None = None,
             overrides: Mapping[str, Any] | None = None, **kwargs: Any) -> Self:
        """Saved config (legacy names and keys accepted) < hub arguments < loader kwargs < ``overrides``."""
        hub_kw = dict(token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
        config: dict[str, Any] = {}
        found = False
        for name in CONFIG_FILES:
            if cls.load_file_path(model_name_or_path, name, subfolder, **hub_kw) is not None:
                config = cls.load_config(model_name_or_path, subfolder, config_filename=name, **hub_kw)
                found = True
                break
        for key in KWARG_DICTS:  # never trust remote code because a file says so
            if isinstance(config.get(key), dict):
                config[key] = {k: v for k, v in config[key].items() if k != "trust_remote_code"}
        if config.get("modality_config") is not None:
            config["modality_config"] = _modality_config_from_json(config["modality_config"])
        known = set(inspect.signature(cls.__init__).parameters) - {"self", "model_name_or_path"}
        for key in [k for k in config if k not in known]:
            if config[key] is not None:
                logger.warning("Transformer: ignoring unsupported config key %r", key)
            config.pop(key)
        for k, v in (init_defaults or {}).items():
            config.setdefault(k, v)
        overrides = dict(overrides or {})
        if overrides.get("model_name_or_path"):  # a YAML node naming another model wins over the folder
            model_name_or_path, subfolder = overrides.pop("model_name_or_path"), ""
        overrides.pop("model_name_or_path", None)
        local = Path(model_name_or_path, subfolder)
        path = str(local) if local.is_dir() else str(model_name_or_path)
        hub = {k: v for k, v in {"token": token, "cache_dir": cache_folder, "revision": revision,
                                 "local_files_only": local_files_only or None,
                                 "trust_remote_code": trust_remote_code or None,
                                 "subfolder": None if local.is_dir() else subfolder or None}.items()
               if v is not None}
        user = {"model_kwargs": model_kwargs, "processor_kwargs": processor_kwargs, "config_kwargs": config_kwargs}
        for key in KWARG_DICTS:
            config[key] = {**(config.get(key) or {}), **hub, **(user[key] or {}), **(overrides.get(key) or {})}
        config["backend"] = backend
        saved_task = config.get("transformer_task", "feature-extraction")
        if overrides.get("transformer_task", saved_task) != saved_task and "modality_config" not in overrides:
            config.pop("modality_config", None)  # the saved one belongs to the saved task: infer again
            config.pop("module_output_name", None)
            found = False
        config.update({k: v for k, v in overrides.items() if k not in KWARG_DICTS})
        if found and config.get("modality_config") is None:  # a pre-6 save: text only, as it was trained
            _, method_out, feature = TASKS[check_task(config.get("transformer_task", "feature-extraction"))]
            config["modality_config"] = {"text": {"method": "forward", "method_output_name": method_out}}
            config["module_output_name"] = feature
        return cls(path, **config)

    # ------------------------------------------------------------------------------------ static description
    @classmethod
    def describe(cls, params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
        hf = None
        if ctx is not None and params.get("model_name_or_path"):
            hf = ctx.hf_config(params["model_name_or_path"])
        out, dim = _describe_output(params, hf)
        return FeatureIO(consumes={}, produces={"input_ids": None, "attention_mask": None, out: dim})


# ================================================================================ helpers (no state)
PROCESSING_KEYS = ("common", "text", "audio", "image", "video", "chat_template")
PROCESSOR_ARG = {"text": "text", "image": "images", "audio": "audio", "video": "videos"}
BOOKKEEPING = {"modality", "task", "prompt_length", "num_images_per_sample", "num_videos_per_sample",
               "query_expansion_positions", "offset_mapping", "overflow_to_sample_mapping", "special_tokens_mask"}
DTYPES = {"float32": torch.float32, "float": torch.float32, "float16": torch.float16, "half": torch.float16,
          "bfloat16": torch.bfloat16, "float64": torch.float64, "double": torch.float64}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
DUAL_ENCODERS = {"clip", "siglip", "siglip2", "chinese_clip", "altclip", "align", "clipseg", "x_clip", "owlvit",
                 "owlv2", "metaclip_2"}


def _convert_dtype(model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``torch_dtype`` / ``dtype`` given as a string (YAML) → a torch dtype; "auto" stays."""
    for key in ("torch_dtype", "dtype"):
        value = model_kwargs.get(key)
        if value is None or isinstance(value, torch.dtype) or value == "auto":
            continue
        name = value.removeprefix("torch.") if isinstance(value, str) else None
        if name not in DTYPES:
            hint = did_you_mean(str(value), [*DTYPES, "auto"])
            raise ValueError(f"model_kwargs.{key}: unknown dtype {value!r}; valid: 'auto', 'float32', 'float16', "
                             "'bfloat16', 'float64'" + (f" ({hint})" if hint else ""))
        model_kwargs[key] = DTYPES[name]
    return model_kwargs


def _check_processing_kwargs(pk: Any) -> dict[str, dict[str, Any]]:
    if pk is None:
        return {}
    if not isinstance(pk, Mapping) or not all(isinstance(v, Mapping) for v in pk.values()):
        raise ValueError("processing_kwargs must map 'common', 'text', 'image', 'audio', 'video' or "
                         f"'chat_template' to a dict of processor arguments, got {pk!r}")
    unknown = sorted(set(pk) - set(PROCESSING_KEYS))
    if unknown:
        logger.warning("processing_kwargs: unknown keys %s are ignored (valid: %s); nest processor arguments "
                       "under 'common' or a modality key", unknown, ", ".join(PROCESSING_KEYS))
    return {k: dict(v) for k, v in pk.items()}


def _merge_processing_kwargs(instance: dict[str, dict[str, Any]], call: Any) -> dict[str, dict[str, Any]]:
    call = _check_processing_kwargs(call)
    return {k: {**instance.get(k, {}), **call.get(k, {})} for k in {*instance, *call}}


def _load_processor(path: str, kwargs: dict[str, Any]) -> Any:
    from transformers import AutoProcessor, AutoTokenizer

    try:
        return AutoProcessor.from_pretrained(path, **kwargs)
    except Exception as first:  # some checkpoints only have a tokenizer AutoProcessor cannot dispatch
        try:
            return AutoTokenizer.from_pretrained(path, **kwargs)
        except Exception:
            raise LoadError(f"cannot load a processor or tokenizer from '{path}': {first}",
                            hint="the folder needs tokenizer/processor files (tokenizer.json, "
                                 "preprocessor_config.json, …)") from first


def _is_tokenizer(obj: Any) -> bool:
    from transformers import PreTrainedTokenizerBase

    return isinstance(obj, PreTrainedTokenizerBase)


def _has_chat_template(processor: Any) -> bool:
    return bool(getattr(processor, "chat_template", None))


def _processor_modalities(processor: Any) -> list[str]:
    """Modalities a processor handles, in the canonical order text, image, audio, video."""
    from transformers import ProcessorMixin
    from transformers.feature_extraction_utils import FeatureExtractionMixin
    from transformers.image_processing_utils import BaseImageProcessor

    try:
        from transformers.video_processing_utils import BaseVideoProcessor
    except ImportError:  # pragma: no cover - older transformers
        BaseVideoProcessor = ()  # type: ignore[assignment]  # noqa: N806

    def kind(obj: Any) -> str | None:
        if _is_tokenizer(obj):
            return "text"
        if BaseVideoProcessor and isinstance(obj, BaseVideoProcessor):
            return "video"
        if isinstance(obj, BaseImageProcessor):
            return "image"
        return "audio" if isinstance(obj, FeatureExtractionMixin) else None

    if isinstance(processor, ProcessorMixin):
        names = processor.get_attributes() if hasattr(processor, "get_attributes") else processor.attributes
        found = {kind(getattr(processor, a, None)) for a in names}
    else:
        found = {kind(processor)}
    return [m for m in ("text", "image", "audio", "video") if m in found]


def _add_lowercase(tok: Any) -> bool:
    """Put a Lowercase normalizer in front of a fast tokenizer's (unless one is there); False if impossible."""
    import json

    from tokenizers import normalizers

    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return False

    def has(n: Any) -> bool:
        return isinstance(n, dict) and (n.get("type") == "Lowercase" or any(has(x) for x in n.get("normalizers") or []))

    if not has(json.loads(backend.to_str()).get("normalizer")):
        current = backend.normalizer
        backend.normalizer = normalizers.Sequence([normalizers.Lowercase(), current]) if current else \
            normalizers.Lowercase()
    return True


def _check_modality_config(mc: Any) -> dict[Any, dict[str, Any]]:
    if not isinstance(mc, Mapping) or not mc:
        raise ValueError(f"modality_config must be a non-empty mapping of modality → {{method, "
                         f"method_output_name}}, got {mc!r}")
    out: dict[Any, dict[str, Any]] = {}
    for key, spec in mc.items():
        modality = normalize_modality(key)
        parts = modality if isinstance(modality, tuple) else (modality,)
        bad = [p for p in parts if p not in MODALITIES]
        if bad:
            raise ValueError(f"modality_config: unknown modality {bad[0]!r}; valid: {', '.join(MODALITIES)} or "
                             "a combination such as 'image+text'")
        if not isinstance(spec, Mapping) or "method" not in spec or "method_output_name" not in spec:
            raise ValueError(f"modality_config[{key!r}] must be a dict with 'method' and 'method_output_name' "
                             f"keys, got {spec!r}")
        out[modality] = dict(spec)
    return out


def _modality_config_from_json(mc: Mapping[str, Any]) -> dict[Any, dict[str, Any]]:
    """Saved keys "image+text" → ("image", "text"); unknown modality names dropped with a warning."""
    out = {}
    for key, spec in mc.items():
        parts = str(key).split("+")
        if any(p not in MODALITIES for p in parts):
            logger.warning("Ignoring unknown modality key %r in modality_config", key)
            continue
        out[normalize_modality(parts)] = spec
    return out


def _input_modality(x: Any, supported: set) -> Any:
    import numpy as np
    from PIL.Image import Image

    if isinstance(x, Image):
        return "image"
    if isinstance(x, str):
        is_image = x.startswith("data:image/") or (x.lower().endswith(IMAGE_SUFFIXES) and Path(x).is_file())
        return "image" if is_image and "image" in supported else "text"
    if isinstance(x, (np.ndarray, torch.Tensor)):
        kind = {1: "audio", 2: "audio", 3: "image", 4: "video", 5: "video"}.get(x.ndim)
        if kind is None:
            raise ValueError(f"cannot infer the modality of an array with {x.ndim} dimensions")
        return kind
    if isinstance(x, dict) and "array" in x:
        if "sampling_rate" in x:
            return "audio"
        if "video_metadata" in x:
            return "video"
        raise ValueError("a dict with 'array' needs 'sampling_rate' (audio) or 'video_metadata' (video)")
    return infer_modality(x)


def _unwrap(x: Any, modality: str, extra: dict[str, Any]) -> Any:
    if isinstance(x, dict) and modality in x and len(x) == 1:
        x = x[modality]
    if isinstance(x, list) and modality == "text":
        x = tuple(x)
    if isinstance(x, tuple) and (len(x) != 2 or not all(isinstance(s, str) for s in x)):
        raise ValueError(f"a text pair must be two strings, got {x!r}")
    if isinstance(x, str) and modality == "image":
        from transformers.image_utils import load_image

        return load_image(x)
    if isinstance(x, dict) and "array" in x:
        extra.setdefault("sampling_rate", x.get("sampling_rate"))
        return x["array"]
    return x


def _parse_inputs(inputs: list[Any], config: Mapping[Any, Any], modality: Any = None
                  ) -> tuple[list[Any], Any, dict[str, Any]]:
    """(inputs ready for the processor, the batch's modality, extra processor kwargs)."""
    supported = set(config)
    mods = [normalize_modality(_input_modality(x, supported)) for x in inputs]
    if "message" in supported:  # a chat model: every batch goes through the chat template
        return inputs, "message", {}
    distinct = set(mods)
    if len(distinct) > 1:
        names = ", ".join(sorted(str(modality_str(m)) for m in distinct))
        raise ValueError(f"This batch mixes multiple modalities ({names}), which this Transformer module cannot "
                         "encode in a single batch. Encode each modality separately (one call per modality).")
    mod = distinct.pop()
    if mod not in supported:
        if isinstance(mod, tuple) and all(m in supported for m in mod):
            raise ValueError(f"This Transformer module supports {' and '.join(mod)} individually, but cannot "
                             "combine them in a single input. Encode each modality separately (one call per "
                             "modality).")
        raise ValueError(f"Modality '{modality_str(mod)}' is not supported by this Transformer module. Supported "
                         f"modalities: {', '.join(str(modality_str(m)) for m in config)}.")
    extra: dict[str, Any] = {}
    if isinstance(mod, tuple):
        inputs = [{m: _unwrap(x[m], m, extra) for m in mod} for x in inputs]
    else:
        inputs = [_unwrap(x, mod, extra) for x in inputs]
    return inputs, mod, extra


def _to_messages(inputs: list[Any], prompt: str | None, fmt: str) -> list[list[dict[str, Any]]]:
    """Inputs → chat conversations: text → a user turn, a pair → query/document turns, prompt → system."""
    flat = fmt == "flat"

    def content(x: Any) -> Any:
        if isinstance(x, str):
            return x if flat else [{"type": "text", "text": x}]
        if isinstance(x, dict):
            return [{"type": k, k: v} for k, v in x.items()]
        kind = normalize_modality(_input_modality(x, {"image", "audio", "video"}))
        return [{"type": kind, kind: x}]

    convs = []
    for x in inputs:
        if isinstance(x, dict) and "role" in x:
            conv = [x]
        elif isinstance(x, list) and x and isinstance(x[0], dict) and "role" in x[0]:
            conv = list(x)
        elif isinstance(x, (tuple, list)) and len(x) == 2:
            conv = [{"role": "query", "content": content(x[0])}, {"role": "document", "content": content(x[1])}]
        else:
            conv = [{"role": "user", "content": content(x)}]
        if prompt:
            conv = [{"role": "system", "content": content(prompt)}, *conv]
        convs.append(conv)
    return convs


def _call_processor(processor: Any, columns: dict[Any, list[Any]], call: dict[str, Any]) -> Any:
    from transformers import ProcessorMixin

    multi = isinstance(processor, ProcessorMixin)
    if list(columns) == ["text"]:
        texts = columns["text"]
        if any(isinstance(t, tuple) for t in texts):
            if not all(isinstance(t, tuple) for t in texts):
                raise ValueError("a batch cannot mix single texts and text pairs")
            tok = getattr(processor, "tokenizer", processor)
            return tok([t[0] for t in texts], [t[1] for t in texts], **call)
        return processor(text=texts, **call) if multi else processor(texts, **call)
    if multi:
        return processor(**{PROCESSOR_ARG[m]: v for m, v in columns.items()}, **call)
    ((_, values),) = columns.items()
    return processor(values, **call)


def _method_inputs(method: Any, features: Mapping[str, Any]) -> dict[str, Any]:
    """The features ``method`` accepts (all but bookkeeping keys when it takes ``**kwargs``)."""
    params = inspect.signature(method).parameters
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if var_kw:
        call = {k: v for k, v in features.items() if k not in BOOKKEEPING or k in params}
    else:
        call = {k: v for k, v in features.items() if k in params}
    if var_kw or "return_dict" in params:
        call["return_dict"] = True
    return call


def _extract(output: Any, path: Any) -> Any:
    """Follow ``method_output_name`` (a key/attribute name, or a list of them) into a model output."""
    for part in [] if path is None else [path] if isinstance(path, (str, int)) else list(path):
        if isinstance(output, Mapping) and part in output:
            output = output[part]
        elif isinstance(part, int):
            output = output[part]
        else:
            output = getattr(output, part)
    return output


def _dimension_from_config(cfg: Mapping[str, Any], module_output_name: str | None) -> int | None:
    """sentence-transformers' rule: projection_dim for sentence_embedding, else hidden_size & co."""
    if module_output_name == "sentence_embedding" and isinstance(cfg.get("projection_dim"), int):
        return cfg["projection_dim"]

    def search(c: Mapping[str, Any]) -> int | None:
        if isinstance(c.get("hidden_size"), int):
            return c["hidden_size"]
        for key in ("neck_hidden_sizes", "hidden_sizes", "embed_dims"):
            if isinstance(c.get(key), list) and c[key]:
                return c[key][-1]
        return c["hidden_dim"] if isinstance(c.get("hidden_dim"), int) else None

    subs = [v for k, v in cfg.items() if isinstance(v, Mapping) and k != "text_config" and "model_type" in v]
    for c in [cfg, cfg.get("text_config") or {}, *subs]:
        dim = search(c)
        if dim is not None:
            return dim
    return None


def _describe_output(params: Mapping[str, Any], hf: Mapping[str, Any] | None) -> tuple[str, int | None]:
    """(output feature, its dimension) from the node's params and the model's config.json (or None)."""
    task = params.get("transformer_task", "feature-extraction")
    feature = TASKS.get(task, TASKS["feature-extraction"])[2]
    mc, mon = params.get("modality_config"), params.get("module_output_name")
    if mc and mon:
        specs = list(mc.values()) if isinstance(mc, Mapping) else []
        hidden = all(isinstance(s, Mapping) and s.get("method_output_name") == "last_hidden_state" for s in specs)
        dim = _dimension_from_config(hf, mon) if hf and (mon == "sentence_embedding" or hidden) else None
        return mon, dim
    if task == "sequence-classification":
        ck = params.get("config_kwargs") or {}
        if "num_labels" in ck:
            return "scores", ck["num_labels"]
        if hf and any(str(a).endswith("ForSequenceClassification") for a in hf.get("architectures") or []):
            return "scores", len(hf.get("id2label") or {}) or hf.get("num_labels") or 2
        return "scores", 1
    if hf is None:
        return feature, None
    if task == "fill-mask":
        return feature, hf.get("vocab_size") or (hf.get("text_config") or {}).get("vocab_size")
    if task == "feature-extraction" and (hf.get("model_type") in DUAL_ENCODERS or (
            "text_config" in hf and "vision_config" in hf and "projection_dim" in hf)):
        return "sentence_embedding", _dimension_from_config(hf, "sentence_embedding")
    return feature, _dimension_from_config(hf, feature)
