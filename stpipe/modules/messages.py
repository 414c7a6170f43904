"""Chat-template (``message``) inputs of ``Transformer``, as sentence-transformers 6.2 formats them.

A processor with a chat template adds the ``message`` modality, and then every batch goes through
``apply_chat_template``: a text becomes a ``user`` turn, a text pair ``query`` / ``document`` turns, an image /
audio / video a typed content item, and a prompt a leading ``system`` message (its length is not tracked, so
``include_prompt=False`` has no effect on chat inputs). The message *format* is ``flat`` (``content`` is the value
itself) or ``structured`` (``content`` is a list of ``{"type": …}`` items): ``modality_config.message.format``
when given, else inferred from the template as sentence-transformers does — a few known model types, then
"structured" when the template indexes content items (``content[0]``, ``.type`` …), else "flat".

>>> infer_message_format("llama", "{{ m['content'] }}"), infer_message_format("x", "{{ m.content[0].text }}")
('flat', 'structured')
"""

from __future__ import annotations

from typing import Any

#: model types whose template the heuristic below misreads (sentence-transformers' table)
KNOWN_FORMATS = {"apertus": "flat", "deepseek_v3": "flat", "gpt_oss": "flat", "seed_oss": "flat"}
STRUCTURED_PATTERNS = ("content[0]", ".type", "'type'", '"type"', "item.type", "message.content[")


def infer_message_format(model_type: str | None, template: Any) -> str:
    """"flat" or "structured" for a chat template (see the module docstring)."""
    if model_type in KNOWN_FORMATS:
        return KNOWN_FORMATS[model_type]
    if not isinstance(template, str) or not template:
        return "structured"
    return "structured" if any(p in template for p in STRUCTURED_PATTERNS) else "flat"


def message_entry(config: dict[Any, dict[str, Any]], method_out: str, model_type: str | None,
                  processor: Any) -> dict[str, Any]:
    """The ``message`` entry a chat-template processor adds: the text entry's method (else ``forward``), and the
    inferred format."""
    base = dict(config.get("text", {"method": "forward", "method_output_name": method_out}))
    base.pop("format", None)
    return {**base, "format": infer_message_format(model_type, getattr(processor, "chat_template", None))}


def is_conversation(x: Any) -> bool:
    """A chat input: a role/content dict, or a list starting with one."""
    def message(m: Any) -> bool:
        return isinstance(m, dict) and "role" in m and "content" in m

    return message(x) or (isinstance(x, list) and bool(x) and message(x[0]))


MEDIA = ("image", "audio", "video")


def is_media_pair(x: Any) -> bool:
    """A (query, document) pair with a half that is not a string (an image, a modality dict …): it goes through
    the chat template as ``query`` / ``document`` turns, as sentence-transformers does with non-text pairs."""
    if not isinstance(x, (tuple, list)) or len(x) != 2 or all(isinstance(h, str) for h in x):
        return False
    return not any(is_conversation(h) or (isinstance(h, list) and h and isinstance(h[0], dict)) for h in x)


def media_kinds(x: Any, supported: list[Any]) -> list[str]:
    """The media kinds (image, audio, video) one input carries: a conversation's typed content items, a pair's
    halves, a modality dict's keys, else the input's own modality ([] where it cannot be inferred)."""
    from stpipe.modules.modality import infer_modality

    found: set[str] = set()
    if is_conversation(x):
        for m in [x] if isinstance(x, dict) else x:
            content = m.get("content") if isinstance(m, dict) else None
            for item in content if isinstance(content, list) else []:
                if isinstance(item, dict) and item.get("type") in MEDIA:
                    found.add(item["type"])
    elif is_media_pair(x):
        for half in x:
            found.update(media_kinds(half, supported))
    else:
        try:
            modality = infer_modality(x, supported)
        except (ValueError, TypeError):
            return []
        found.update(m for m in (modality if isinstance(modality, tuple) else (modality,)) if m in MEDIA)
    return [m for m in MEDIA if m in found]


def count_media(out: dict[str, Any], convs: list[list[dict[str, Any]]]) -> None:
    """``num_images_per_sample`` / ``num_videos_per_sample`` (the typed content items of each conversation) when the
    processor returned ``pixel_values`` / ``video_grid_thw``, as sentence-transformers adds them: processors that
    flatten the visual tokens of a batch lose which sample they belong to (in place)."""
    import torch

    def count(conv: list[dict[str, Any]], kind: str) -> int:
        return sum(1 for m in conv if isinstance(m.get("content"), list)
                   for item in m["content"] if isinstance(item, dict) and item.get("type") == kind)

    for key, kind, name in (("pixel_values", "image", "num_images_per_sample"),
                            ("video_grid_thw", "video", "num_videos_per_sample")):
        if key in out:
            out[name] = torch.tensor([count(c, kind) for c in convs], dtype=torch.long)


def message_format(spec: dict[str, Any], model_type: str | None, processor: Any) -> str:
    """``modality_config.message.format``, with "auto" (or no format) inferred from the chat template."""
    fmt = spec.get("format", "auto")
    return infer_message_format(model_type, getattr(processor, "chat_template", None)) if fmt == "auto" else fmt


# ---------------------------------------------------------------------------------------------- the chat call
#: the apply_chat_template arguments that size the output (never given to the suffix renders)
SIZE_KWARGS = frozenset({"padding", "truncation", "max_length", "return_tensors"})
#: processing_kwargs sections → the processor's per-modality keyword dicts
BUCKETS = {"text": "text_kwargs", "image": "images_kwargs", "audio": "audio_kwargs", "video": "videos_kwargs",
           "common": "common_kwargs"}


def apply_chat(processor: Any, convs: list[list[dict[str, Any]]], kwargs: dict[str, dict[str, Any]]) -> Any:
    """``apply_chat_template`` with the arguments routed as the processor takes them: a multimodal processor gets
    the per-modality dicts (``processing_kwargs.image`` reaches its image processor); a tokenizer gets the size
    arguments at the top level and the rest of ``text`` as ``tokenizer_kwargs``. ``kwargs``: the sections of
    ``processing_kwargs`` (size arguments given under ``chat_template`` fold into ``text``)."""
    import inspect

    from transformers import ProcessorMixin

    from stpipe.modules.template_limits import install

    install()  # templates render with limits on output size and time
    chat = dict(kwargs.get("chat_template", {}))
    text = {**kwargs.get("text", {}), **{k: chat.pop(k) for k in SIZE_KWARGS & chat.keys()}}
    common = dict(kwargs.get("common", {}))
    if isinstance(processor, ProcessorMixin):
        video = dict(kwargs.get("video", {}))
        chat = {"load_audio_from_video": video.pop("load_audio_from_video", False), **chat}
        nested = {BUCKETS[k]: dict(kwargs.get(k, {})) for k in ("image", "audio")}
        nested.update(text_kwargs=text, videos_kwargs=video, common_kwargs=common)
        if "processor_kwargs" in inspect.signature(processor.apply_chat_template).parameters:  # transformers >= 5.4
            return processor.apply_chat_template(convs, tokenize=True, return_dict=True,
                                                 return_tensors=common.get("return_tensors"),
                                                 processor_kwargs=nested, **chat)
        return processor.apply_chat_template(convs, tokenize=True, return_dict=True, **nested, **chat)
    top = {k: common.pop(k) for k in SIZE_KWARGS & common.keys()}
    top.update({k: text.pop(k) for k in SIZE_KWARGS & text.keys()})
    return processor.apply_chat_template(convs, tokenize=True, return_dict=True, tokenizer_kwargs=text,
                                         common_kwargs=common, **top, **chat)


def chat_features(processor: Any, convs: list[list[dict[str, Any]]], kwargs: dict[str, dict[str, Any]],
                  default_max_length: int | None) -> dict[str, Any]:
    """:func:`apply_chat` over a batch of conversations. When truncation is on (unless ``restore_suffix: false``
    in ``processing_kwargs.chat_template``), the template's fixed tail that right-truncation cut off is written
    back over the last real tokens of each truncated row, as sentence-transformers does: last-token pooling and
    causal rerankers read the final position."""
    kwargs = {k: dict(v) for k, v in kwargs.items()}
    kwargs.setdefault("text", {}).pop("logits_to_keep", None)
    chat = kwargs.setdefault("chat_template", {})
    restore = chat.pop("restore_suffix", True)
    text, common = kwargs["text"], kwargs.get("common", {})
    truncation = chat.get("truncation", text.get("truncation", common.get("truncation")))
    max_length = chat.get("max_length", text.get("max_length", common.get("max_length")))
    active = bool(restore) and (bool(truncation) or (truncation is None and max_length is not None)) \
        and truncation != "do_not_truncate"
    out = dict(apply_chat(processor, convs, kwargs))
    if active:
        render = {k: {n: v for n, v in d.items() if n not in SIZE_KWARGS} for k, d in kwargs.items()}
        restore_suffix(out, convs, lambda conv: _render(processor, conv, render), max_length or default_max_length)
    return out


def _render(processor: Any, conv: list[dict[str, Any]], kwargs: dict[str, dict[str, Any]]) -> list[int]:
    kwargs = {**kwargs, "text": {**kwargs.get("text", {}), "padding": False, "truncation": False}}
    ids = apply_chat(processor, [conv], kwargs)["input_ids"]
    ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    return ids[0] if ids and isinstance(ids[0], list) else ids


def _text_only(conv: list[dict[str, Any]]) -> bool:
    for m in conv:
        c = m.get("content") if isinstance(m, dict) else None
        if not (isinstance(c, str) or (isinstance(c, list) and all(
                isinstance(i, dict) and i.get("type", "text") == "text" for i in c))):
            return False
    return True


def _skeleton(conv: list[dict[str, Any]], filler: str) -> list[dict[str, Any]]:
    """Every non-system content replaced by ``filler`` (system messages kept: a prompt may render in the tail)."""
    return [m if m.get("role") == "system" else
            {**m, "content": [{"type": "text", "text": filler}] if isinstance(m.get("content"), list) else filler}
            for m in conv]


def template_suffix(conv: list[dict[str, Any]], render: Any) -> list[int]:
    """The token ids a conversation's template always ends with: the common tail of two renders with different
    fillers ([] for media conversations, or when the renders never differ)."""
    if not conv or not _text_only(conv):
        return []
    try:
        first, second = render(_skeleton(conv, "0")), render(_skeleton(conv, "1 2 3 4"))
    except Exception:  # never let the suffix break tokenization
        return []
    count = 0
    for a, b in zip(reversed(first), reversed(second), strict=False):
        if a != b:
            break
        count += 1
    return first[len(first) - count:] if 0 < count < min(len(first), len(second)) else []


def restore_suffix(out: dict[str, Any], convs: list[list[dict[str, Any]]], render: Any,
                   max_length: int | None) -> None:
    """Write each truncated row's template suffix back over its last real tokens (in place)."""
    import torch

    ids, mask = out.get("input_ids"), out.get("attention_mask")
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or not isinstance(mask, torch.Tensor) or not mask.numel():
        return
    limit, width = max_length or 0, ids.shape[-1]
    if width < limit:
        return
    lengths, left = mask.long().sum(dim=1).tolist(), (mask[:, 0] == 0).tolist()
    cache: dict[str, list[int]] = {}
    for row in range(min(ids.shape[0], len(convs))):
        if lengths[row] < limit:
            continue
        key = repr(_skeleton(convs[row], ""))
        if key not in cache:
            cache[key] = template_suffix(convs[row], render)
        suffix = cache[key]
        keep = min(len(suffix), lengths[row])
        if keep:
            end = width if left[row] else lengths[row]
            ids[row, end - keep:end] = torch.as_tensor(suffix[-keep:], dtype=ids.dtype)
