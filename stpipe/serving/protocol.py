"""The HTTP API's request bodies, checked field by field: what was wrong, where (``input[3]``), which status.

Pure Python (no web framework, no torch): :func:`parse_json` turns the body into a JSON object (400 otherwise),
:func:`embeddings_request` and :func:`rerank_request` check every field and return the request as a dataclass or
raise :class:`HTTPError` — 422 for a wrong field (with its path as ``param``), 413 for too many inputs or too long
a text, 404 for an unknown model. Errors are OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``,
so the official client raises them as ``openai.APIStatusError`` with the message intact.

The API takes text only: a string is always a text. A model that also takes images, audio or video would read a
string that looks like a media source (a URL, a ``data:`` URI, a file name ending in ``.png`` …) as that medium
and open or download it, so for such models those strings are refused (422) before anything runs —
:func:`media_like` decides from the string alone, without touching the file system.

>>> embeddings_request({"model": "m", "input": "hi"}, LIMITS).texts
['hi']
>>> try:
...     embeddings_request({"model": "m", "input": ["a", 3]}, LIMITS)
... except HTTPError as e:
...     print(e.status, e.param)
422 input[1]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: limits of the doctests (the served ones come from conf/serve/default.yaml)
LIMITS = {"max_inputs": 4, "max_input_chars": 100}


class HTTPError(Exception):
    """An error answered to the client: ``status``, a message, the offending field (``param``) and a code."""

    TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
             413: "request_too_large", 422: "invalid_request_error", 503: "service_unavailable"}

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.TYPES.get(self.status, "error"),
                          "param": self.param, "code": self.code}}


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; 400 naming the line and column of a syntax error, or what was found instead."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPError(400, f"the body is not UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})",
                        code="invalid_json") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HTTPError(400, f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                        code="invalid_json") from None
    except RecursionError:
        raise HTTPError(400, "the body is not valid JSON: nested too deeply", code="invalid_json") from None
    if not isinstance(value, dict):
        raise HTTPError(400, f"the body must be a JSON object, found {type(value).__name__}", code="invalid_json")
    return value


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _unknown(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            from stpipe.errors import did_you_mean

            hint = did_you_mean(str(key), allowed)
            raise HTTPError(422, f"unknown field '{key}'" + (f"; {hint}" if hint else "") +
                            f" (fields: {', '.join(allowed)})", param=str(key), code="unknown_field")


def _string(body: Mapping[str, Any], key: str, *, required: bool = False, param: str | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise HTTPError(422, f"'{key}' is required", param=param or key, code="missing_field")
        return None
    if not isinstance(value, str):
        raise HTTPError(422, f"'{param or key}' must be a string, found {_kind(value)}", param=param or key,
                        code="invalid_type")
    return value


def _bool(body: Mapping[str, Any], key: str, default: bool | None) -> bool | None:
    value = body.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise HTTPError(422, f"'{key}' must be true or false, found {_kind(value)}", param=key, code="invalid_type")
    return value


def _positive_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HTTPError(422, f"'{key}' must be a positive integer, found {json.dumps(value)[:40]}", param=key,
                        code="invalid_value")
    return value


def _texts(value: Any, param: str, limits: Mapping[str, Any], what: str) -> list[str]:
    """A list of strings (``input``, ``documents``): 422 for a wrong item, 413 beyond the limits."""
    if not isinstance(value, list):
        raise HTTPError(422, f"'{param}' must be a string or an array of strings, found {_kind(value)}",
                        param=param, code="invalid_type")
    if not value:
        raise HTTPError(422, f"'{param}' is empty: give at least one {what}", param=param, code="invalid_value")
    if len(value) > limits["max_inputs"]:
        raise HTTPError(413, f"'{param}' has {len(value)} items; at most {limits['max_inputs']} per request "
                        "(serve.limits.max_inputs): split the request", param=param, code="too_many_inputs")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            tokens = isinstance(item, int) or (isinstance(item, list) and all(isinstance(t, int) for t in item))
            why = " (token arrays are not supported: send the text)" if tokens and not isinstance(item, bool) else ""
            raise HTTPError(422, f"'{param}[{i}]' must be a string, found {_kind(item)}{why}", param=f"{param}[{i}]",
                            code="invalid_type")
        _length(item, f"{param}[{i}]", limits)
    return list(value)


def _length(text: str, param: str, limits: Mapping[str, Any]) -> None:
    if len(text) > limits["max_input_chars"]:
        raise HTTPError(413, f"'{param}' has {len(text)} characters; at most {limits['max_input_chars']} "
                        "(serve.limits.max_input_chars)", param=param, code="input_too_long")


def media_like(text: str) -> str | None:
    """The medium a model that takes images/audio/video could read ``text`` as (a URL, ``data:`` URI or name
    ending in a media suffix), else None — decided from the string alone (no file system access).

    >>> media_like("cat.png"), media_like("https://example.com/a.mp3"), media_like("a cat on a mat")
    ('image', 'audio', None)
    """
    from urllib.parse import urlparse

    from stpipe.modules.audio import AUDIO_SUFFIXES, VIDEO_SUFFIXES, looks_like_url
    from stpipe.modules.modality import IMAGE_SUFFIXES

    s = text.strip().lower()
    if s.startswith("data:"):
        return "media data URI"
    path = s
    if looks_like_url(text):
        try:
            path = urlparse(s).path
        except ValueError:
            return "URL"
    for medium, suffixes in (("image", IMAGE_SUFFIXES), ("audio", AUDIO_SUFFIXES), ("video", VIDEO_SUFFIXES)):
        if path.endswith(tuple(suffixes)):
            return medium
    return "video" if looks_like_url(text) else None


def refuse_media(texts: list[str], param: str) -> None:
    """422 for the first string a multimodal model would take as a media source (see the module docstring)."""
    for i, text in enumerate(texts):
        medium = media_like(text)
        if medium is not None:
            where = param if param == "query" else f"{param}[{i}]"
            raise HTTPError(422, f"'{where}' looks like a {medium} source (a URL, data URI or media file name), which "
                            "this model would open as such; the server takes text only", param=where,
                            code="media_not_supported")


@dataclass
class EmbeddingsRequest:
    model: str
    texts: list[str]
    single: bool
    dimensions: int | None = None
    encoding_format: str = "float"
    task: str | None = None
    prompt_name: str | None = None
    normalize: bool | None = None


EMBEDDINGS_FIELDS = ("model", "input", "dimensions", "encoding_format", "user", "task", "prompt_name", "normalize")


def embeddings_request(body: Mapping[str, Any], limits: Mapping[str, Any]) -> EmbeddingsRequest:
    """``POST /v1/embeddings``: OpenAI's fields (``user`` is accepted and ignored) plus stpipe's ``task``,
    ``prompt_name`` and ``normalize``."""
    _unknown(body, EMBEDDINGS_FIELDS)
    model = _string(body, "model", required=True)
    if "input" not in body:
        raise HTTPError(422, "'input' is required: a string or an array of strings", param="input",
                        code="missing_field")
    raw = body["input"]
    single = isinstance(raw, str)
    if single:
        _length(raw, "input", limits)
    texts = [raw] if single else _texts(raw, "input", limits, "text")
    fmt = _string(body, "encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise HTTPError(422, f"'encoding_format' must be 'float' or 'base64', found {fmt!r}", param="encoding_format",
                        code="invalid_value")
    _string(body, "user")
    return EmbeddingsRequest(model=str(model), texts=texts, single=single, dimensions=_positive_int(body, "dimensions"),
                             encoding_format=fmt, task=_string(body, "task"), prompt_name=_string(body, "prompt_name"),
                             normalize=_bool(body, "normalize", None))


@dataclass
class RerankRequest:
    model: str
    query: str
    documents: list[str]
    top_n: int | None = None
    return_documents: bool = False
    prompt_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


RERANK_FIELDS = ("model", "query", "documents", "top_n", "return_documents", "prompt_name")


def rerank_request(body: Mapping[str, Any], limits: Mapping[str, Any]) -> RerankRequest:
    """``POST /v1/rerank``: ``query``, ``documents`` (strings), ``top_n``, ``return_documents`` (Cohere/Jina/TEI's
    shape) plus ``prompt_name``."""
    _unknown(body, RERANK_FIELDS)
    model = _string(body, "model", required=True)
    query = _string(body, "query", required=True)
    _length(str(query), "query", limits)
    if "documents" not in body:
        raise HTTPError(422, "'documents' is required: an array of strings", param="documents", code="missing_field")
    docs = _texts(body["documents"], "documents", limits, "document")
    return RerankRequest(model=str(model), query=str(query), documents=docs, top_n=_positive_int(body, "top_n"),
                         return_documents=bool(_bool(body, "return_documents", False)),
                         prompt_name=_string(body, "prompt_name"))


__all__ = ["EmbeddingsRequest", "HTTPError", "RerankRequest", "embeddings_request", "media_like", "parse_json",
           "refuse_media", "rerank_request"]
