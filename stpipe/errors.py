"""One error family for stpipe — every exception stpipe raises on purpose is defined here.

Every problem stpipe finds in a model definition is a :class:`Problem`; all the problems of one
validation run travel together in one :class:`ConfigError`. Problems with files on disk (a missing
weight file, a malformed ``modules.json``, a refused pickle) are :class:`LoadError`. Both derive from
:class:`StpipeError`, which the CLI catches to print a short report instead of a traceback:

* :class:`ConfigError` — a model definition or run settings (all problems at once);
* :class:`LoadError` — a file on disk;
* :class:`ArgumentError` — a constructor argument, named by ``key`` (a ``ValueError``);
* :class:`RouteError` — a Router cannot route an input (raised while encoding);
* :class:`UsageError` — the ``stpipe`` command's own arguments;
* :class:`CommandError` — a command's input or output files (not the model definition);
* :class:`ConfigWarning` — a problem that does not stop a build (a ``UserWarning``).

This module imports nothing of stpipe (and nothing heavy), so every layer may use it.

>>> p = Problem(code="schema.enum", path=("modules", 1, "pooling_mode"), message="unknown pooling mode 'meen'",
...             hint="did you mean 'mean'?")
>>> p.path_str
'modules[1].pooling_mode'
>>> "did you mean 'mean'?" in str(ConfigError([p]))
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

PathPart = str | int
Path = tuple[PathPart, ...]


def format_path(path: Sequence[PathPart]) -> str:
    """Render ``("modules", 0, "sub_modules", "query", 1)`` as ``modules[0].sub_modules.query[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def did_you_mean(word: str, choices: Iterable[str], n: int = 1) -> str | None:
    """A "did you mean 'x'?" hint, or None when nothing is close."""
    import difflib  # here: only a mistake needs it

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=0.6)
    if not close:
        lowered = {str(c).lower(): str(c) for c in choices}
        if str(word).lower() in lowered:
            close = [lowered[str(word).lower()]]
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a model definition.

    ``code`` is stable (tests and users may match on it); ``path`` points into the model definition;
    ``source`` says where the offending value came from (``file.yaml:12:5``, an override, a sweep point).
    """

    code: str
    path: Path
    message: str
    hint: str | None = None
    expected: str | None = None
    found: str | None = None
    source: str | None = None
    severity: Literal["error", "warning"] = "error"

    @property
    def path_str(self) -> str:
        return format_path(self.path)

    def with_source(self, source: str | None) -> Problem:
        return replace(self, source=source)

    def render(self) -> str:
        head = f"{self.severity} [{self.code}] {self.path_str}: {self.message}"
        lines = [head]
        if self.source:
            lines.append(f"    at {self.source}")
        if self.expected is not None:
            lines.append(f"    expected: {self.expected}")
        if self.found is not None:
            lines.append(f"    found: {self.found}")
        if self.hint:
            lines.append(f"    hint: {self.hint}")
        return "\n".join(lines)


class ProblemList:
    """``errors`` and ``warnings`` of anything that holds ``problems`` (a ConfigError, a validation Report)."""

    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


class StpipeError(Exception):
    """Base of every error stpipe raises on purpose."""


@dataclass
class ConfigError(ProblemList, StpipeError, ValueError):
    """All the problems found in one model definition, reported at once."""

    problems: list[Problem] = field(default_factory=list)
    title: str = "invalid model definition"

    def __post_init__(self) -> None:
        super().__init__(self.render())

    @property
    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def render(self) -> str:
        n = len(self.errors)
        head = f"{self.title}: {n} problem{'s' if n != 1 else ''}"
        return "\n".join([head, *(p.render() for p in self.problems)])

    def __str__(self) -> str:
        return self.render()

    def __reduce__(self):  # keep picklable for multiprocessing
        return (ConfigError, (self.problems, self.title))


def config_error(code: str, path: Sequence[PathPart], message: str, **kw) -> ConfigError:
    """Shorthand for a ConfigError holding a single problem."""
    return ConfigError([Problem(code=code, path=tuple(path), message=message, **kw)])


class LoadError(StpipeError, ValueError):
    """A file on disk cannot be loaded safely or correctly. The message names the file and what to do."""

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        self.file = path
        self.hint = hint
        text = message if path is None or path in message else f"{path}: {message}"
        if hint:
            text += f"\n    hint: {hint}"
        super().__init__(text)


class ArgumentError(StpipeError, ValueError):
    """A constructor argument is invalid; ``key`` names it (``Pipeline(model_type=…)`` → ``"model_type"``), so a
    caller building from a definition can point at the definition's key instead of guessing from the text."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)

    def __reduce__(self):  # keep picklable
        return (ArgumentError, (self.key, str(self)))


class RouteError(StpipeError, ValueError):
    """No route can take an input (raised while encoding; the texts are sentence-transformers')."""


class ModelTypeError(StpipeError, TypeError):
    """A method the model's type does not offer: ``predict``/``rank`` on an embedding model, ``encode`` on a
    CrossEncoder. The message says which type the model is; the hint what to call instead."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message + (f"\n    hint: {hint}" if hint else ""))

    def __reduce__(self):  # keep picklable
        return (_model_type_error, (str(self),))


def _model_type_error(text: str) -> ModelTypeError:
    return ModelTypeError(text)


class UsageError(StpipeError):
    """The ``stpipe`` command was called wrongly (unknown verb, missing argument)."""


class CommandError(StpipeError):
    """A problem with a command's own arguments or files (not the model definition)."""


class ConfigWarning(UserWarning):
    """A problem that does not stop a model definition from building (severity "warning"), e.g. an
    unreachable route. :func:`stpipe.config.validate.validate` emits one per warning; ``.problem`` holds it."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.render())

    def __reduce__(self):  # keep picklable
        return (ConfigWarning, (self.problem,))
