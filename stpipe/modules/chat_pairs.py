"""Whether a chat template can carry a (query, document) pair — the check before a pair is rendered as messages.

A pair becomes one ``query`` and one ``document`` message (:func:`stpipe.modules.transformer_inputs.to_messages`).
A template that only knows ``system`` / ``user`` / ``assistant`` renders such a conversation to an empty or
content-free prompt: a reranker would score an input that holds neither text (a 0-width batch, an all-padding row
beside single texts, an empty input from a dict of templates). sentence-transformers 6.2 refuses that; so does
stpipe, naming the first input that is a pair and what to change.

The verdict comes from rendering probe pairs and comparing the prompts (a template may pass roles through without
naming them, as ChatML does), never from reading the template's source; it is cached per template and arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PAIR_ROLES = ("query", "document")
#: a baseline pair, then one pair per role that changes only that role's content (first letter and length)
PROBES = (("alpha", "bravo"), ("charlie", "bravo"), ("alpha", "foxtrot"))
#: processing_kwargs.chat_template keys that only size the tokenized output (not part of the render)
_NOT_RENDERED = frozenset({"padding", "truncation", "max_length", "return_tensors", "restore_suffix",
                           "pad_to_multiple_of", "return_dict", "tokenize"})


def pair_index(convs: list[list[dict[str, Any]]]) -> int | None:
    """The index of the first conversation holding both a ``query`` and a ``document`` message, or None."""
    roles = set(PAIR_ROLES)
    return next((i for i, conv in enumerate(convs)
                 if roles <= {m.get("role") for m in conv if isinstance(m, Mapping)}), None)


def pair_roles_problem(processor: Any, fmt: str, chat_kwargs: Mapping[str, Any],
                       cache: dict[Any, str | None] | None = None) -> str | None:
    """Why ``processor``'s chat template cannot carry a pair (rendered with ``chat_kwargs``), or None."""
    template = getattr(processor, "chat_template", None)
    if not template:
        return "is missing (the model has no chat template)"
    kwargs = {k: v for k, v in chat_kwargs.items() if k not in _NOT_RENDERED}
    key = (repr(template), repr(sorted(kwargs.items())), fmt)
    if cache is not None and key in cache:
        return cache[key]
    from stpipe.modules.transformer_inputs import to_messages

    try:
        base, *varied = [str(processor.apply_chat_template(to_messages([pair], None, fmt)[0], tokenize=False,
                                                           **kwargs)) for pair in PROBES]
    except Exception as exc:  # noqa: BLE001 - the template's own error is the reason
        problem: str | None = f"raises {type(exc).__name__}: {exc}"
    else:
        dropped = [role for role, render in zip(PAIR_ROLES, varied, strict=True) if render == base]
        problem = (f"drops the {' and '.join(repr(r) for r in dropped)} message content (it renders no "
                   f"{'/'.join(dropped)} role)") if dropped else None
    if cache is not None:
        cache[key] = problem
    return problem


def check_pair_roles(processor: Any, convs: list[list[dict[str, Any]]], fmt: str,
                     chat_kwargs: Mapping[str, Any], cache: dict[Any, str | None] | None = None) -> None:
    """ValueError when a conversation is a (query, document) pair and the chat template cannot render one."""
    index = pair_index(convs)
    if index is None:
        return
    problem = pair_roles_problem(processor, fmt, chat_kwargs, cache)
    if problem is None:
        return
    content = ("messages | selectattr('role', 'eq', 'query') | map(attribute='content') | first" if fmt == "flat"
               else "(messages | selectattr('role', 'eq', 'query') | first).content[0].text")
    raise ValueError(
        f"input {index} is a (query, document) pair, but the chat template {problem}, so the model would score "
        "an input without the pair's text. A pair is rendered as one 'query' and one 'document' message: set a "
        "chat template that renders both roles (e.g. '<Query>: {{ " + content + " }}' and the same for "
        "'document'), through processor_kwargs.chat_template, a chat_template.jinja file in the model folder, or "
        "processing_kwargs.chat_template.chat_template naming a template of the processor's that does; or score "
        "the pair with a model without a chat template")
