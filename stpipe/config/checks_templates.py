"""The chat-template check of validation (``check.chat-template``): a Transformer's chat template — written in the
node (``processor_kwargs.chat_template``) or saved in its model folder (``chat_template.jinja``,
``chat_template.json``, ``tokenizer_config.json``) — must render a short sample conversation within the limits of
:mod:`stpipe.modules.template_limits` (output size, time). Reads only those files; renders in Jinja's sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path as FsPath
from typing import Any

from stpipe.config.checks import CheckContext, check, nodes_of_type
from stpipe.errors import Problem
from stpipe.resources import resolve_model_path

#: a template file larger than this is not read (a template is a few kilobytes)
MAX_TEMPLATE_BYTES = 1_000_000


def _read(f: FsPath) -> str | None:
    try:
        if f.is_file() and not f.is_symlink() and f.stat().st_size <= MAX_TEMPLATE_BYTES:
            return f.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    return None


def _from_json(text: str | None) -> list[str]:
    try:
        value = json.loads(text).get("chat_template") if text else None
    except (ValueError, AttributeError):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):  # [{"name": …, "template": …}]
        return [t["template"] for t in value if isinstance(t, Mapping) and isinstance(t.get("template"), str)]
    return []


def saved_templates(folder: FsPath) -> list[tuple[str, str]]:
    """``(file name, template)`` of every chat template saved in a model folder."""
    out = []
    jinja = _read(folder / "chat_template.jinja")
    if jinja is not None:
        out.append(("chat_template.jinja", jinja))
    for name in ("chat_template.json", "tokenizer_config.json", "processor_config.json"):
        out += [(name, t) for t in _from_json(_read(folder / name))]
    return out


@check("check.chat-template")
def chat_templates_within_limits(defn: Mapping[str, Any], ctx: CheckContext) -> Iterator[Problem]:
    from stpipe.modules.template_limits import template_problem

    for path, node in nodes_of_type(ctx, "Transformer"):
        found: list[tuple[Any, str, str]] = []
        own = (node.get("processor_kwargs") or {}).get("chat_template") \
            if isinstance(node.get("processor_kwargs"), Mapping) else None
        if isinstance(own, str):
            found.append((path + ("processor_kwargs", "chat_template"), "the node", own))
        value = node.get("model_name_or_path")
        folder = FsPath(resolve_model_path(value, ctx.base_dir)) if isinstance(value, str) and value else None
        if folder is not None and folder.is_dir():
            found += [(path + ("model_name_or_path",), f"{folder / name}", t) for name, t in saved_templates(folder)]
        for where, origin, template in found:
            why = template_problem(template)
            if why:
                yield Problem(code="check.chat-template", path=where, message=f"the chat template of {origin}: {why}",
                              hint="a template that hangs or builds huge strings is refused when inputs are "
                                   "encoded; fix or remove it (limits: stpipe.modules.template_limits)")
