"""Model types whose ``modality_config`` sentence-transformers 6.2 does not infer from the processor but takes from
a fixed table, per ``transformer_task`` (torch-free data; :func:`stpipe.modules.transformer_setup.infer_modality_config`
looks it up first). Only entries that need no method-output check are listed: the audio encoders (only the encoder
is loaded, so their text side is not available on its own), and the causal-LM families whose processor alone
would claim modalities the model cannot take.

>>> config, feature = edge_case("feature-extraction", "wav2vec2")
>>> list(config), config["audio"], feature
(['audio', ('audio', 'text')], {'method': 'forward', 'method_output_name': 'last_hidden_state'}, 'token_embeddings')
"""

from __future__ import annotations

from typing import Any


def _forward(out: str) -> dict[str, Any]:
    return {"method": "forward", "method_output_name": out}


_AUDIO = {"audio": _forward("last_hidden_state"), ("audio", "text"): _forward("last_hidden_state")}
AUDIO_ENCODERS = ("hubert", "moonshine", "sew", "sew-d", "unispeech-sat", "unispeech", "wav2vec2",
                  "wav2vec2-conformer", "wavlm", "whisper", "voxtral_realtime")
_GIT_CAUSAL = {"text": _forward("logits"), ("image", "text"): _forward("logits")}
_IMAGE_TEXT_CAUSAL = {("image", "text"): _forward("logits")}

#: task → model_type → (modality_config, module_output_name)
EDGE_CASES: dict[str, dict[str, tuple[dict[Any, dict[str, Any]], str]]] = {
    "feature-extraction": {
        **{m: (_AUDIO, "token_embeddings") for m in AUDIO_ENCODERS},
        "git": ({"text": _forward("last_hidden_state"), ("image", "text"): _forward("last_hidden_state")},
                "token_embeddings"),
        "visual_bert": ({"text": _forward("last_hidden_state"), ("image", "text"): _forward("last_hidden_state")},
                        "token_embeddings"),
        **{m: ({("image", "text"): _forward("last_hidden_state")}, "token_embeddings")
           for m in ("kosmos-2", "grounding-dino", "paligemma", "vilt")},
        "layoutlmv3": ({"image": _forward("last_hidden_state"), ("image", "text"): _forward("last_hidden_state")},
                       "token_embeddings"),
        "idefics": ({"text": _forward("last_hidden_state"), "image": _forward("last_hidden_state"),
                     ("image", "text"): _forward("last_hidden_state")}, "token_embeddings"),
    },
    "fill-mask": {"wav2vec2": ({"audio": _forward("logits")}, "token_embeddings")},
    "text-generation": {"git": (_GIT_CAUSAL, "causal_logits"), "whisper": ({"text": _forward("logits")},
                                                                           "causal_logits")},
    "any-to-any": {
        "git": (_GIT_CAUSAL, "causal_logits"),
        **{m: (_IMAGE_TEXT_CAUSAL, "causal_logits") for m in ("blip", "blip-2", "kosmos-2", "paligemma")},
        "voxtral_realtime": ({"audio": _forward("logits"), ("audio", "text"): _forward("logits")}, "causal_logits"),
    },
}


def edge_case(task: str, model_type: str | None) -> tuple[dict[Any, dict[str, Any]], str] | None:
    """A fresh copy of the fixed ``(modality_config, module_output_name)`` for this task and model type, or None."""
    entry = EDGE_CASES.get(task, {}).get(model_type or "")
    if entry is None:
        return None
    config, feature = entry
    return {k: dict(v) for k, v in config.items()}, feature
