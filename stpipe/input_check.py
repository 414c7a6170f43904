"""Which input a pipeline cannot take, found before anything runs, and said with its index.

``encode`` (without an explicit ``modality=``) checks every input of the call: its modality is inferred as the
first module would infer it, and then, for a Router, the route that input resolves to is found and its input
module asked. The first input that cannot be taken gives a ValueError that starts with ``input <i>`` (its
position in the call) and goes on in sentence-transformers' words: audio sent to a text-only route, a chat
conversation given to a model whose processor has no chat template, a value whose modality cannot be inferred.
Then the input module itself is asked (a Transformer's ``input_problem``): a video or audio given to a chat model
whose processor has no video / audio processor (its template would drop it), an image alone given to a causal
multimodal LM without a chat template (no prompt tokens). ``CrossEncoder.predict`` checks its pairs the same way.

A call of one input that the model as a whole cannot take keeps sentence-transformers' exact message (its index
is 0). A module that lists ``message`` takes everything (sentence-transformers turns every batch into chat messages for
it); a chat input needs ``message``.
"""

from __future__ import annotations

from typing import Any

from stpipe.errors import RouteError
from stpipe.modules.audio import decodable, looks_like_url, refuse_url
from stpipe.modules.image_limits import check_image_file
from stpipe.modules.messages import is_media_pair
from stpipe.modules.modality import Modality, check_batch_modality, infer_modality, modality_str, supports


def _label(modality: Modality, x: Any = None) -> str:
    if modality == "message" and is_media_pair(x):
        return "a (query, document) pair with a non-text half (it goes through the chat template)"
    if modality == "message":
        return "a chat conversation (role/content messages)"
    return f"{modality_str(modality)}"


def _takes(modality: Modality, supported: list[Any]) -> bool:
    if "message" in supported:
        return True
    return modality != "message" and supports(modality, supported)


def _refusal(i: int, modality: Modality, supported: list[Any], source: str, x: Any = None) -> ValueError:
    shown = ", ".join(str(modality_str(m)) for m in supported)
    if modality == "message":
        return ValueError(f"input {i} is {_label(modality, x)}, but this {source} does not support chat-style "
                          f"'message' inputs: its processor has no chat template. Supported modalities: {shown}. "
                          "Pass the text itself, or give the model a chat template (processor_kwargs: "
                          "{chat_template: ...}).")
    return ValueError(f"input {i} is {_label(modality)}: Modality '{modality_str(modality)}' is not supported by this "
                      f"{source}. Supported modalities: {shown}.")


def check_inputs(first: Any, inputs: list[Any], model_type: str, task: str | None = None) -> None:
    """ValueError naming the first of ``inputs`` that ``first`` (the pipeline's first module) cannot take."""
    router = hasattr(first, "resolve_route") and hasattr(first, "sub_modules")
    supported = list(getattr(first, "modalities", ["text"]))
    if len(inputs) == 1:  # one input: what the model as a whole refuses, in sentence-transformers' words
        check_batch_modality(inputs, None, supported, f"{model_type} model")
    for i, x in enumerate(inputs):
        try:
            modality = "message" if is_media_pair(x) else infer_modality(x, supported)
        except ValueError as exc:
            raise ValueError(f"input {i}: {exc}") from None
        if modality in ("image", "audio", "video") and isinstance(x, str):  # a file: readable here?
            try:
                refuse_url(x) if modality == "image" else decodable(x)
                if modality == "image":
                    check_image_file(x)
            except ValueError as exc:
                raise ValueError(f"input {i} ({x!r}): {exc}") from None
        elif isinstance(x, dict) and isinstance(x.get("image"), str) and not looks_like_url(x["image"]):
            try:
                check_image_file(x["image"])
            except ValueError as exc:
                raise ValueError(f"input {i} (image {x['image']!r}): {exc}") from None
        if not router:
            if not _takes(modality, supported):
                raise _refusal(i, modality, supported, f"{model_type} model", x)
            _check_module(first, i, x)
            continue
        try:
            route = first.resolve_route(task, modality)
        except (RouteError, ValueError):
            continue  # the Router says why when the batch runs
        module = first.sub_modules[route][0]
        route_supported = list(getattr(module, "modalities", ["text"]))
        if not _takes(modality, route_supported):
            others = [r for r, mods in first.sub_modules.items()
                      if r != route and _takes(modality, list(getattr(mods[0], "modalities", ["text"])))]
            hint = (f" Route {others[0]!r} takes {modality_str(modality)}: add a route_mappings entry "
                    f"{{modality: {modality_str(modality)}, route: {others[0]}}}, or pass task/modality so that "
                    "it resolves there." if others else "")
            raise ValueError(f"input {i} is {_label(modality, x)}, but it resolves to route {route!r}, whose "
                             f"{type(module).__name__} does not take it: Modality '{modality_str(modality)}' is not "
                             f"supported by route {route!r}. Supported modalities: "
                             f"{', '.join(str(modality_str(m)) for m in route_supported)}.{hint}")
        _check_module(module, i, x)


def _check_module(module: Any, i: int, x: Any) -> None:
    """What the module itself says about an input of a modality it lists (a Transformer's ``input_problem``)."""
    problem = getattr(module, "input_problem", None)
    message = problem(x) if callable(problem) else None
    if message:
        raise ValueError(f"input {i} {message}")
