"""The ``Pooling`` contract: pooling modes, the deprecated boolean mode flags, and the static description.

>>> legacy_pooling_mode({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True})
('cls', 'mean')
>>> POOLING.describe({"pooling_mode": "cls"}, {"token_embeddings": 8}).produces
{'sentence_embedding': 8}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stpipe.contracts.base import Contract, FeatureIO
from stpipe.errors import did_you_mean

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
#: the deprecated boolean flags (sentence-transformers < 5), in the order their modes are concatenated
LEGACY_MODE_KEYS = {
    "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max", "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken",
}
PARAMS = ("embedding_dimension", "pooling_mode", "include_prompt")
CONFIG_KEYS = PARAMS
CONFIG_KEY_RENAMES = {"word_embedding_dimension": "embedding_dimension"}


def legacy_pooling_mode(params: dict[str, Any]) -> str | tuple[str, ...] | None:
    """Turn the deprecated ``pooling_mode_*`` flags of ``params`` into ``pooling_mode``, in place (as
    sentence-transformers 6.2 does): the flags are removed; an explicit ``pooling_mode`` wins; no flag set means
    ``mean``. Returns the mode the flags gave (None when there were none)."""
    found = [k for k in LEGACY_MODE_KEYS if k in params]
    if not found:
        return None
    active = tuple(mode for key, mode in LEGACY_MODE_KEYS.items() if params.get(key)) or ("mean",)
    mode = active[0] if len(active) == 1 else active
    params.setdefault("pooling_mode", mode)
    for k in found:
        del params[k]
    return mode


def legacy_warning(keys: Sequence[str]) -> str:
    """The FutureWarning text for the deprecated flags (sentence-transformers' wording)."""
    return (f"The {', '.join(f'`{k}`' for k in keys)} argument(s) are deprecated. Please use `pooling_mode` "
            "instead.")


def deprecated_flags(params: Mapping[str, Any]) -> list[tuple[list[str], str]]:
    """The deprecated flags a node sets, with what to write instead (for validation's warning)."""
    found = [k for k in LEGACY_MODE_KEYS if k in params]
    if not found:
        return []
    if "pooling_mode" in params:
        return [(found, "remove them: the pooling_mode given wins over the flags")]
    mode = legacy_pooling_mode(dict(params))
    shown = mode if isinstance(mode, str) else "[" + ", ".join(mode) + "]"
    return [(found, f"write pooling_mode: {shown} instead")]


def check_pooling_mode(mode: Any) -> str | tuple[str, ...]:
    """A valid mode string, or a tuple of them for several modes; ValueError listing the valid modes."""
    modes = [mode] if isinstance(mode, str) else list(mode) if isinstance(mode, Sequence) else None
    if not modes:
        raise ValueError(f"pooling_mode must be one of {list(POOLING_MODES)} or a non-empty list of them, "
                         f"got {mode!r}")
    for m in modes:
        if m not in POOLING_MODES:
            hint = did_you_mean(str(m), POOLING_MODES)
            raise ValueError(f"invalid pooling mode {m!r}; valid pooling modes are: {', '.join(POOLING_MODES)}"
                             + (f" ({hint})" if hint else ""))
    return modes[0] if len(modes) == 1 else tuple(modes)


def n_modes(mode: Any) -> int:
    return 1 if isinstance(mode, str) or mode is None else len(mode)


def describe(params: Mapping[str, Any], upstream: Mapping[str, int | None], ctx: Any = None) -> FeatureIO:
    """Reads token embeddings (and the mask); produces ``sentence_embedding`` of ``n_modes × dimension``."""
    params = dict(params)
    legacy_pooling_mode(params)
    dim = params.get("embedding_dimension")
    io = FeatureIO(consumes={"token_embeddings": "", "attention_mask": ""})
    if isinstance(dim, int):
        io.requires_dim.append(("token_embeddings", dim, "embedding_dimension"))
    else:
        dim = upstream.get("token_embeddings")
    io.produces["sentence_embedding"] = dim * n_modes(params.get("pooling_mode", "mean")) if dim else None
    return io


def config_dict(saved: Mapping[str, Any]) -> dict[str, Any]:
    """``Pooling.get_config_dict()`` of the module loaded from these saved parameters."""
    mode = saved.get("pooling_mode", "mean")
    return {"embedding_dimension": saved.get("embedding_dimension"),
            "pooling_mode": mode if isinstance(mode, str) else list(mode),
            "include_prompt": saved.get("include_prompt", True)}


POOLING = Contract(name="Pooling", describe=describe, params=PARAMS, config_keys=CONFIG_KEYS, config_dict=config_dict,
                   config_key_renames=CONFIG_KEY_RENAMES, clean_config=legacy_pooling_mode,
                   enums={"pooling_mode": POOLING_MODES},
                   legacy_params=tuple(LEGACY_MODE_KEYS), deprecated=deprecated_flags)
