"""Access and size limits: the request body read within ``serve.limits.max_body_bytes``, API keys, CORS.

API keys (``Authorization: Bearer KEY``) come from the environment variable *named* by
``serve.auth.api_key_env`` (comma-separated keys) and/or the file named by ``serve.auth.api_key_file`` (one key
per line; blank lines and ``#`` comments ignored) — read once at start, never from a served model's folder, never
logged, printed or written anywhere. Keys are compared in constant time. With keys set, every endpoint but
``/health`` needs one (401 otherwise); without, the server is open — which is why it listens on 127.0.0.1 unless
told otherwise. CORS is off (no headers) unless ``serve.cors.allow_origins`` lists origins.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stpipe.errors import CommandError
from stpipe.serving.protocol import HTTPError

#: paths answered without an API key (load balancers' probes)
OPEN_PATHS = ("/health",)


async def read_body(receive: Any, headers: Mapping[str, str], limit: int) -> bytes:
    """The whole body from the ASGI ``receive`` channel; 413 as soon as it (or its Content-Length) exceeds
    ``limit`` bytes — a larger body is never held in memory."""
    declared = headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPError(400, "Content-Length is not a number", code="invalid_request") from None
        if size > limit:
            raise HTTPError(413, f"the body has {size} bytes; at most {limit} (serve.limits.max_body_bytes)",
                            code="body_too_large")
    chunks, total = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "the client disconnected before sending the whole body", code="disconnected")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise HTTPError(413, f"the body exceeds {limit} bytes (serve.limits.max_body_bytes)",
                            code="body_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _inside(path: Path, folders: Iterable[Path]) -> Path | None:
    for folder in folders:
        try:
            path.relative_to(folder)
            return folder
        except ValueError:
            continue
    return None


def load_api_keys(auth: Mapping[str, Any], model_folders: Iterable[Path] = (),
                  environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The accepted API keys (empty: no authentication). CommandError when a named variable is unset or empty,
    the file is missing, unreadable, empty, or inside a served model's folder."""
    env = os.environ if environ is None else environ
    keys: list[str] = []
    name = auth.get("api_key_env")
    if name:
        value = env.get(name, "")
        found = [k.strip() for k in value.split(",") if k.strip()]
        if not found:
            raise CommandError(f"serve.auth.api_key_env names the environment variable {name}, which is "
                               f"{'empty' if name in env else 'not set'}: export {name}=<key> (comma-separated "
                               "for several) before starting, or drop serve.auth.api_key_env")
        keys += found
    file = auth.get("api_key_file")
    if file:
        path = Path(file).expanduser()
        resolved = path.resolve()
        folder = _inside(resolved, [Path(f).resolve() for f in model_folders])
        if folder is not None:
            raise CommandError(f"serve.auth.api_key_file '{file}' is inside the served model's folder '{folder}': "
                               "keys never live with a model (it may be shared or exported); move the file")
        if path.is_symlink() or not path.is_file():
            raise CommandError(f"serve.auth.api_key_file '{file}' is not a regular file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"serve.auth.api_key_file '{file}': cannot read it ({type(exc).__name__})") from None
        found = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if not found:
            raise CommandError(f"serve.auth.api_key_file '{file}' holds no key (one per line)")
        keys += found
    return tuple(keys)


def check_key(headers: Mapping[str, str], keys: tuple[str, ...]) -> None:
    """401 unless ``Authorization: Bearer KEY`` names one of ``keys`` (nothing to check when there are none)."""
    if not keys:
        return
    value = headers.get("authorization", "")
    scheme, _, given = value.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise HTTPError(401, "this server needs an API key: send the header 'Authorization: Bearer <key>'",
                        code="missing_api_key", headers={"WWW-Authenticate": "Bearer"})
    token = given.strip().encode()
    ok = False
    for key in keys:  # every key compared: the time does not tell which one matched
        ok |= hmac.compare_digest(token, key.encode())
    if not ok:
        raise HTTPError(401, "the API key is not valid", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


def cors_middleware(cors: Mapping[str, Any]) -> list[Any]:
    """Starlette middleware for ``serve.cors`` (none when no origin is allowed)."""
    origins = list(cors.get("allow_origins") or [])
    if not origins:
        return []
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware

    return [Middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type"])]


__all__ = ["OPEN_PATHS", "check_key", "cors_middleware", "load_api_keys", "read_body"]
