"""Old-style task dicts (``[{"query": "x"}, …]``): told apart from data dicts (messages, audio arrays, modality
dicts) and split into inputs and a task, as sentence-transformers 6.2 still accepts them."""

from __future__ import annotations

from typing import Any

from stpipe.errors import RouteError

_MODALITY_KEYS = {"text", "image", "audio", "video"}


def _is_data_dict(x: dict) -> bool:
    return ("role" in x and "content" in x) or "array" in x or (bool(x) and all(k in _MODALITY_KEYS for k in x))


def is_task_dict(x: Any) -> bool:
    """An old-style input ``{"query": "x"}``: a dict keyed by a task type rather than by modalities."""
    return isinstance(x, dict) and not _is_data_dict(x)


def split_task_dicts(inputs: list[Any]) -> tuple[list[Any], str | None]:
    """Backward compatibility: ``[{"query": "x"}, …]`` → ``(["x", …], "query")``; inputs without such dicts are
    returned as they are, with task None. Old-style dicts with different task types, or mixed with other inputs,
    are refused (RouteError) whatever the batch size, rather than routed piecemeal."""
    if not any(is_task_dict(x) for x in inputs):
        return inputs, None
    if not all(is_task_dict(x) for x in inputs):
        raise RouteError("You cannot mix dictionaries with task types as keys (e.g. {'query': ...}) with other "
                         "inputs. Please pass only dictionaries with the same task type key, or pass non-dictionary "
                         "inputs while providing the `task` argument.")
    keys = {tuple(x) for x in inputs}
    if len(keys) != 1 or len(next(iter(keys))) != 1:
        raise RouteError("You cannot pass a list of dictionaries with different task types. Please ensure all "
                         "dictionaries have the same task type key, or pass non-dictionary inputs while providing "
                         "the `task` argument.")
    task = next(iter(keys))[0]
    return [x[task] for x in inputs], task
