"""Limits on rendering a saved chat template: a template is code from the model folder, run in Jinja's sandbox (no
attribute escapes), but the sandbox bounds neither time nor memory — nested loops hang, ``'A'*3000000000``
allocates gigabytes. stpipe renders every chat template with

* an output limit: the rendered text may hold at most ``max_chars`` characters (default 16 million), and an
  operation that would build a larger string or list (``*``, ``+``) or a huge power (``**``) is refused before it
  runs;
* a time limit: ``seconds`` (default 10) per render — a template still running then is stopped with an error.

Both raise :class:`TemplateLimitError` (a ValueError naming the limit and what to do); :func:`set_template_limits`
changes them for the process. :func:`install` hooks transformers' template compilation (its
``_compile_jinja_template``) once, so every ``apply_chat_template`` stpipe makes — and any other in this process —
renders under the limits; :func:`template_problem` renders a template on a sample conversation for
``stpipe validate``.

>>> template_problem("{{ 'A' * 3000000000 }}")
'the chat template builds a string or list of 3,000,000,000 items, more than the limit of 16,000,000 characters'
>>> template_problem("{% for m in messages %}{{ m.content }}{% endfor %}") is None
True
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

_limits = {"max_chars": 16_000_000, "seconds": 10.0}
_installed: list[Any] = []


class TemplateLimitError(ValueError):
    """A chat template exceeded the output size or time limit."""


def set_template_limits(max_chars: int | None = None, seconds: float | None = None) -> None:
    """Change the limits of this process (None keeps one)."""
    if max_chars is not None:
        _limits["max_chars"] = int(max_chars)
    if seconds is not None:
        _limits["seconds"] = float(seconds)


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _binop(table: dict[str, Any]) -> Any:
    def call_binop(context: Any, operator: str, left: Any, right: Any) -> Any:
        cap = int(_limits["max_chars"])
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if _size(seq) is not None and isinstance(n, int) and _size(seq) * n > cap:
                    raise TemplateLimitError(f"the chat template builds a string or list of {_size(seq) * n:,} items, "
                                             f"more than the limit of {cap:,} characters")
        elif operator == "+" and _size(left) is not None and _size(right) is not None and \
                _size(left) + _size(right) > cap:
            raise TemplateLimitError(f"the chat template builds a string or list of {_size(left) + _size(right):,} "
                                     f"items, more than the limit of {cap:,} characters")
        elif operator == "**" and isinstance(right, int) and abs(right) > 4096 and isinstance(left, int) \
                and abs(left) > 1:
            raise TemplateLimitError(f"the chat template computes {left}**{right}: refused (a number of that size "
                                     "takes minutes and gigabytes)")
        return table[operator](left, right)
    return call_binop


def _raise_in(thread_id: int) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(TemplateLimitError))


def limited_concat(pieces: Iterable[str]) -> str:
    """``"".join(pieces)`` under the limits: the output size checked per piece, and a watchdog that stops the
    rendering thread (an asynchronous TemplateLimitError) after ``seconds`` — loops that output nothing included."""
    cap, seconds = int(_limits["max_chars"]), float(_limits["seconds"])
    lock, state = threading.Lock(), {"done": False, "fired": False}
    me = threading.get_ident()

    def fire() -> None:
        with lock:
            if not state["done"]:
                state["fired"] = True
                _raise_in(me)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    out: list[str] = []
    blocks: list[str] = []
    total, t0 = 0, time.monotonic()
    timer.start()
    try:
        try:
            for piece in pieces:
                total += len(piece)
                if total > cap:
                    raise TemplateLimitError(f"the chat template's output exceeds the limit of {cap:,} characters")
                out.append(piece)
                if len(out) >= 4096:  # many tiny pieces: joined as they come (memory ~ characters, not objects)
                    blocks.append("".join(out))
                    out.clear()
        finally:
            with lock:
                state["done"] = True
            timer.cancel()
    except TemplateLimitError as exc:
        if state["fired"]:
            raise TemplateLimitError(f"rendering the chat template took more than {seconds:g} s "
                                     f"({time.monotonic() - t0:.1f} s): stopped") from None
        raise exc from None
    return "".join(blocks + out)


def harden(env: Any) -> Any:
    """A Jinja environment with the limits (before it compiles a template: binary operators are intercepted at
    compile time)."""
    env.intercepted_binops = frozenset({"*", "+", "**"})
    env.call_binop = _binop(dict(env.binop_table))
    env.concat = limited_concat
    return env


def install() -> None:
    """Make transformers compile chat templates in a hardened environment (once per process)."""
    if _installed:
        return
    from transformers.utils import chat_template_utils as ctu

    original = ctu._cached_compile_jinja_template

    @lru_cache
    def compile_limited(chat_template: str) -> Any:
        env = harden(original("").environment)  # transformers' environment, hardened before it compiles
        return env.from_string(chat_template)  # (unhardened, Jinja would fold 'A'*3000000000 while compiling)

    ctu._compile_jinja_template = compile_limited
    _installed.append(compile_limited)


def _validation_env() -> Any:
    """A sandbox like transformers' (trim/lstrip blocks, loop controls; ``{% generation %}`` rendered as is)."""
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            next(parser.stream)
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.Scope(body)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = lambda x, **kw: __import__("json").dumps(x)
    env.globals["raise_exception"] = lambda m: (_ for _ in ()).throw(jinja2.TemplateError(m))
    return harden(env)


def template_problem(chat_template: str) -> str | None:
    """Why ``chat_template`` cannot be rendered within the limits on a short sample conversation, or None (other
    template errors — syntax, ``raise_exception`` — are left to the run, which reports them)."""
    try:
        template = _validation_env().from_string(chat_template)
        template.render(messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "hello"}],
                        add_generation_prompt=False, tools=None, documents=None)
    except TemplateLimitError as exc:
        return str(exc)
    except Exception:  # noqa: BLE001 - not a limit: the run says what is wrong with the template
        return None
    return None
