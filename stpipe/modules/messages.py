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
