"""The run settings (``conf/config.yaml`` after composition, without ``model``): checked like a model definition.

:func:`run_problems` checks them against ``schemas/run.schema.json`` (types, ``precision`` names, ``batch_size``
≥ 1, ``device`` of the form cpu | cuda | cuda:N | mps | null …); :func:`stpipe.config.compose.compose` calls it,
so every composition — each point of a sweep included — is checked before anything runs.
:func:`run_file_problems` adds what needs the machine: the inputs file exists, the output suffix is one
``encode`` writes, the device is available. The CLI runs it for every point before the first job.

Problems carry the path of the setting (``batch_size``) and, through a :class:`SourceMap`, the override or the
``config.yaml`` line it came from; codes ``schema.*`` (the schema) and ``run.*`` (the machine).

>>> [(p.code, p.path_str, p.hint) for p in run_problems({"precision": "int4", "batch_size": 32})]
[('schema.enum', 'precision', "did you mean 'int8'?")]
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path as FsPath
from typing import Any

from stpipe.config.schema import load_schema
from stpipe.config.schema_problems import schema_problems
from stpipe.config.sources import SourceMap
from stpipe.errors import Problem

#: what ``stpipe encode`` can write
OUTPUT_SUFFIXES = (".npy", ".jsonl", ".parquet")
RUN_SCHEMA = "run.schema.json"


def inputs_override(override: str) -> str:
    """``inputs=FILE`` → ``inputs.path=FILE``: ``inputs`` is a mapping {path, column, id_column}, so that
    ``inputs=x.csv inputs.column=text`` composes (Hydra cannot set a key below a string). ``data.KEY=V`` →
    ``++data.KEY=V``: the ``data`` group is null unless ``data=NAME`` picks a set, and a user's file needs none
    (``data.path=pairs.csv`` alone). ``compose()`` applies it to every composition, the CLI to the overrides of a
    sweep (``-m``) before Hydra's multirun sees them.

    >>> inputs_override("inputs=x.csv"), inputs_override("inputs.column=text"), inputs_override("out=d")
    ('inputs.path=x.csv', 'inputs.column=text', 'out=d')
    >>> inputs_override("data.path=pairs.csv"), inputs_override("data=stsb-dev"), inputs_override("+data.x=1")
    ('++data.path=pairs.csv', 'data=stsb-dev', '+data.x=1')
    """
    key, eq, value = override.partition("=")
    if eq and key.startswith("data."):
        return "++" + override
    sub = _MAPPINGS.get(key.lstrip("+")) if eq else None
    return f"{key}.{sub}={value}" if sub else override


#: run settings that are mappings set by their name alone: ``inputs=FILE`` (inputs.path), ``calibration=DATA``
#: (calibration.data, beside calibration.samples)
_MAPPINGS = {"inputs": "path", "calibration": "data"}


@cache
def _validator(strict: bool) -> Any:
    from jsonschema import Draft202012Validator

    schema = copy.deepcopy(load_schema(RUN_SCHEMA))
    if not strict:
        schema["additionalProperties"] = True
    return Draft202012Validator(schema)


def run_problems(run: Mapping[str, Any], sources: SourceMap | None = None, *, strict: bool = True) -> list[Problem]:
    """The problems of the composed run settings against ``schemas/run.schema.json``. ``strict``: unknown keys are
    errors (stpipe's own ``conf/``; a caller's config directory may hold settings of its own)."""
    problems = schema_problems(_validator(strict), dict(run), (), "the run settings")
    return (sources or SourceMap()).apply(problems)


def show_progress(run: Mapping[str, Any]) -> bool:
    """``show_progress_bar``: true always, false never, null (the default) only when stderr is a terminal — a
    log file gets no carriage-return bars unless asked for."""
    import sys

    value = run.get("show_progress_bar")
    return bool(value) if value is not None else sys.stderr.isatty()


def _routers(node: Any, depth: int = 0) -> list[Mapping[str, Any]]:
    """The Router nodes anywhere in a definition's modules (routes included)."""
    if depth > 50:
        return []
    if isinstance(node, Mapping):
        found = [node] if node.get("type") == "Router" else []
        for key in ("modules", "sub_modules"):
            value = node.get(key)
            for child in (value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []):
                found += _routers(child, depth + 1)
        return found
    return [r for child in node for r in _routers(child, depth + 1)] if isinstance(node, list) else []


def _choice_problem(key: str, value: str, choices: list[str], why: str) -> Problem:
    from stpipe.errors import did_you_mean

    shown = ", ".join(f"'{c}'" for c in choices) or "(none)"
    return Problem(code=f"run.{key}", path=(key,), message=f"{key} '{value}' {why}", expected=f"one of: {shown}",
                   found=repr(value), hint=did_you_mean(value, choices) or f"use one of: {shown}, or leave {key} "
                   "unset")


def run_model_problems(run: Mapping[str, Any], definition: Any, sources: SourceMap | None = None) -> list[Problem]:
    """The run settings that depend on the model, checked against its definition before any weight loads:
    ``task`` must be served by a Router route (a mapping's task or a route's name; anything, when a mapping
    without a task answers every task for its modality) — without a Router, one of query, document or a prompt
    name —, and ``prompt_name`` must name a prompt of the model (``query``, ``document`` and the definition's
    ``prompts``).

    >>> d = {"prompts": {"q": "query: "}, "modules": [{"type": "Router", "sub_modules": {"query": [], "doc": []},
    ...      "route_mappings": [{"task": "search", "route": "query"}]}]}
    >>> [(p.path_str, p.hint) for p in run_model_problems({"task": "serch", "prompt_name": "qq"}, d)]
    [('task', "did you mean 'search'?"), ('prompt_name', "did you mean 'q'?")]
    """
    if not isinstance(definition, Mapping):
        return []
    problems: list[Problem] = []
    prompts = definition.get("prompts")
    names = ["query", "document"] + [str(k) for k in (prompts if isinstance(prompts, Mapping) else {})
                                     if k not in ("query", "document")]
    task = run.get("task")
    if isinstance(task, str) and task:
        routers = _routers(definition.get("modules"))
        if routers:
            tasks: list[str] = []
            catch_all = False
            for r in routers:
                maps = r.get("route_mappings")
                for m in (maps if isinstance(maps, list) else []):
                    if isinstance(m, Mapping):
                        if m.get("task") is None:  # (None, modality): answers every task for its inputs
                            catch_all = True
                        elif isinstance(m.get("task"), str):
                            tasks.append(m["task"])
                subs = r.get("sub_modules")
                tasks += [str(k) for k in (subs if isinstance(subs, Mapping) else {})]
            tasks = list(dict.fromkeys(tasks))
            if not catch_all and task not in tasks:
                problems.append(_choice_problem("task", task, tasks, "is served by no route of the model's Router"))
        elif task not in names:
            problems.append(_choice_problem("task", task, names, "is not a task of this model (it has no Router; "
                                            "the tasks are query, document and its prompt names)"))
    prompt_name = run.get("prompt_name")
    if isinstance(prompt_name, str) and prompt_name not in names:
        problems.append(_choice_problem("prompt_name", prompt_name, names, "is not a prompt of the model"))
    return (sources or SourceMap()).apply(problems)


def _device_problem(device: Any) -> Problem | None:
    if not isinstance(device, str):
        return None
    import torch

    kind, _, index = device.partition(":")
    hint = "use device=cpu, or leave device unset (null: cuda when available, else cpu)"
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = "this torch was built without CUDA" if torch.version.cuda is None else "no GPU is visible"
            return Problem(code="run.device", path=("device",), message=f"device '{device}' is not available: {why}",
                           expected="cpu" + (", mps" if _mps() else ""), found=repr(device), hint=hint)
        n = torch.cuda.device_count()
        if index and int(index) >= n:
            return Problem(code="run.device", path=("device",), message=f"device '{device}' does not exist: {n} GPU"
                           f"{'s are' if n != 1 else ' is'} visible", expected=f"cuda:0 … cuda:{n - 1}",
                           found=repr(device), hint="GPU indexes count from 0")
    if kind == "mps" and not _mps():
        return Problem(code="run.device", path=("device",), message="device 'mps' is not available (Apple GPUs "
                       "only)", found=repr(device), hint=hint)
    return None


def _mps() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _writable_problems(key: str, value: str, *, want_dir: bool) -> list[Problem]:
    """``value`` can be written before any weight loads: a file (``output``) that is not a directory, a directory
    (``out``) that is not a file, whose nearest existing ancestor is a directory this process may write into."""
    import os

    target = FsPath(value)
    what = "directory" if want_dir else "file"
    if want_dir and target.exists() and not target.is_dir():
        return [Problem(code=f"run.{key}", path=(key,), message=f"{key} '{value}' is a file; stpipe export writes a "
                        "directory", hint=f"give a new directory name, e.g. {key}={target.with_suffix('')}_model/")]
    if not want_dir and target.is_dir():
        return [Problem(code=f"run.{key}", path=(key,), message=f"{key} '{value}' is a directory; stpipe encode "
                        "writes a file", hint=f"e.g. {key}={target / 'embeddings.npy'}")]
    if not want_dir and not target.parent.is_dir() and not target.parent.is_file():
        return [Problem(code=f"run.{key}", path=(key,), message=f"{key} '{value}': the directory '{target.parent}' "
                        "does not exist, and stpipe creates no directories you did not name", hint="create it first: "
                        f"mkdir -p {target.parent}, or check the path")]
    parent = target if want_dir and target.is_dir() else target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return [Problem(code=f"run.{key}", path=(key,), message=f"{key} '{value}': '{parent}' is a file, so no "
                        f"{what} can be made below it", hint="check the path")]
    if not os.access(parent, os.W_OK | os.X_OK):
        return [Problem(code=f"run.{key}", path=(key,), message=f"{key} '{value}': the directory '{parent}' is not "
                        "writable", hint=f"choose a {what} in a directory you may write to")]
    return []


def run_file_problems(run: Mapping[str, Any], verb: str, sources: SourceMap | None = None) -> list[Problem]:
    """What the run settings need from the machine for ``verb`` (``encode``/``predict``/``rank``/``export``): the
    inputs file exists, the output suffix fits the verb (encode: .npy, .jsonl or .parquet; predict: .npy or .jsonl;
    rank: .jsonl), the shard index is below the count, the device is available. No weights are read."""
    problems: list[Problem] = []
    if verb in ("encode", "predict", "rank"):  # rank writes .jsonl only (hits are records)
        suffixes = {"rank": (".jsonl",), "predict": (".npy", ".jsonl")}.get(verb, OUTPUT_SUFFIXES)
        inputs = run.get("inputs")
        inputs = inputs.get("path") if isinstance(inputs, Mapping) else inputs
        if isinstance(inputs, str) and inputs != "-" and not FsPath(inputs).is_file():
            what = "is a directory" if FsPath(inputs).is_dir() else "does not exist"
            problems.append(Problem(code="run.inputs", path=("inputs",), message=f"inputs file '{inputs}' {what}",
                                    expected="a .txt (one input per line), .jsonl, .csv, .tsv or .parquet file",
                                    hint="check the path (relative to the current directory); without inputs= "
                                         "stpipe reads stdin"))
        output = run.get("output")
        if isinstance(output, str) and not output.endswith(suffixes):
            suffix = FsPath(output).suffix or "no suffix"
            problems.append(Problem(code="run.output", path=("output",), message=f"output '{output}': stpipe {verb} "
                                    f"writes {' or '.join(suffixes)} files", expected=" or ".join(suffixes),
                                    found=suffix, hint=f"e.g. output={FsPath(output).with_suffix(suffixes[0])}"))
        if isinstance(output, str) and output.endswith(suffixes):
            problems += _writable_problems("output", output, want_dir=False)
        shard = run.get("shard")
        if isinstance(shard, Mapping) and isinstance(shard.get("index"), int) and isinstance(shard.get("count"), int) \
                and shard["index"] >= shard["count"]:
            problems.append(Problem(code="run.shard", path=("shard", "index"), message=f"shard.index={shard['index']}"
                                    f" is not below shard.count={shard['count']}", expected=f"0 … {shard['count'] - 1}",
                                    hint="shards count from 0: shard.index=0 … shard.count-1"))
    if verb in ("export", "evaluate", "train") and isinstance(run.get("out"), str):
        problems += _writable_problems("out", run["out"], want_dir=True)
    if verb in ("encode", "export", "evaluate", "predict", "rank", "train", "serve"):
        p = _device_problem(run.get("device"))
        if p is not None:
            problems.append(p)
    return (sources or SourceMap()).apply(problems)
