"""The ``stpipe`` command: ``stpipe VERB [MODEL] [hydra overrides…]``.

VERB is one of encode, merge, predict, rank, evaluate, validate, import, export, schema, report, train, serve.
MODEL is a YAML model definition, a saved sentence-transformers directory, or absent (then ``model=<name>`` picks
``conf/model/<name>.yaml``,
default ``minilm``). Every ``key=value`` argument is a Hydra override of the run configuration
(``conf/config.yaml``) or of the model (``model.modules.1.pooling_mode=cls``).

Exit codes: 0 success, 2 invalid input (configuration, files, arguments) — reported as a short list,
never as a traceback; 1 for a sweep (``-m``) some of whose points failed while running (each has its
``error.json``; the others ran).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from stpipe.errors import ConfigWarning, StpipeError, UsageError

USAGE = """usage: stpipe VERB [MODEL] [key=value ...] [options]

verbs:
  encode    embed inputs:   stpipe encode [MODEL] inputs=FILE output=OUT.npy|OUT.jsonl|OUT.parquet [task=query]
            [inputs.column=text] [workers=N] [engine=ray] [shard.index=i shard.count=N] (streamed; resumable)
  merge     join the shards of `encode shard.count=N` in input order:  stpipe merge DIR [out=FILE]
  predict   score pairs with a CrossEncoder:  stpipe predict MODEL inputs=PAIRS.tsv|PAIRS.jsonl [output=S.jsonl]
  rank      rank documents for a query (CrossEncoder):  stpipe rank MODEL query=TEXT inputs=DOCS.txt [top_k=10]
  evaluate  score a model on a data set, write metrics.json:  stpipe evaluate [MODEL] data=stsb-dev [out=DIR]
  validate  check a model definition without loading weights:  stpipe validate [MODEL] [--explain] [-m sweep...]
  import    print a YAML model definition that rebuilds a saved sentence-transformers model:  stpipe import DIR
  export    write a model in sentence-transformers' format:  stpipe export [MODEL] out=DIR
            or one ONNX/OpenVINO graph of it:  stpipe export [MODEL] out=DIR format=onnx|openvino
              [quantize=int8|int8-static] [optimize=O1|O2|O3] [calibration=DATA|FILE]
  schema    print the combined JSON Schema of model definitions
  train     fine-tune a model (checkpoints, final model, metrics.jsonl):  stpipe train [MODEL] data=stsb-train
            loss=cosent [training.learning_rate=2e-5] [training.eval_data=stsb-dev] [out=DIR]
  report    one table of a sweep's points (terminal, report.md/.csv/.png):  stpipe report SWEEP_DIR [out=DIR]
  serve     an HTTP API (OpenAI-compatible /v1/embeddings, /v1/rerank; needs stpipe[serve]):  stpipe serve [MODEL]
            [host=127.0.0.1] [port=8000] [serve=NAME: several models, conf/serve/NAME.yaml] [engine=ray]

MODEL: a YAML model definition, a saved model directory, or nothing (model=NAME picks conf/model/NAME.yaml; default
minilm). key=value arguments are Hydra overrides, e.g. 'model.modules.1.pooling_mode=cls' or batch_size=64.
options: -m/--multirun (a sweep through Hydra's multirun: every point is validated before the first job; one
directory per point under hydra.sweep.dir with metrics.json or error.json; hydra/launcher=joblib|submitit_local|
submitit_slurm|ray, hydra/sweeper=optuna, +experiment=NAME presets, resume=true), --explain (validate: resolved
config, classes, routing tables), -h/--help (stpipe VERB --help: that verb's settings), -V/--version
"""

VERBS = ("encode", "merge", "predict", "rank", "evaluate", "validate", "import", "export", "schema", "report",
         "train", "serve")


def _is_override(a: str) -> bool:
    """``key=value``, ``+key=value``, ``++key=value`` and ``~key[=value]`` (Hydra's delete) are overrides; an
    existing path (even one with '=' in its name) and ``~/…`` are not."""
    if Path(a).exists() or a.startswith("~/"):
        return False
    return "=" in a or a.startswith(("~", "+"))


def _split_args(args: Sequence[str]) -> tuple[str | None, list[str], set[str]]:
    model: str | None = None
    overrides: list[str] = []
    flags: set[str] = set()
    for a in args:
        if a.startswith("-") and "=" not in a:
            flags.add({"-m": "--multirun", "-h": "--help"}.get(a, a))
        elif _is_override(a):
            overrides.append(a)
        elif model is None:
            model = a
        else:
            raise UsageError(f"unexpected argument '{a}': only one MODEL may be given (overrides look like key=value)")
    unknown = flags - {"--multirun", "--help", "--explain"}
    if unknown:
        raise UsageError(f"unknown option(s) {sorted(unknown)}; see `stpipe --help`")
    return model, overrides, flags


def usage_of(verb: str) -> str:
    """The verb's entry of :data:`USAGE`, as one line."""
    lines = USAGE.split("\nMODEL:")[0].splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"  {verb} "))
    entry = [lines[start][2 + len(verb):].strip()]
    for ln in lines[start + 1:]:
        if not ln.startswith(" " * 12):
            break
        entry.append(ln.strip())
    return f"stpipe {verb} — " + " ".join(entry)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("stpipe")
    except PackageNotFoundError:  # a source checkout that is not installed
        from stpipe import __version__

        return __version__


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"stpipe {version()}")
        return 0
    verb, rest = argv[0], argv[1:]
    try:
        if verb not in VERBS:
            from stpipe.errors import did_you_mean

            hint = did_you_mean(verb, VERBS)
            raise UsageError(f"unknown verb '{verb}'" + (f"; {hint}" if hint else "") + f" (verbs: {', '.join(VERBS)})")
        model, overrides, flags = _split_args(rest)
        if "--multirun" in flags:  # for Hydra's own multirun; compose() does the same for every other composition
            from stpipe.config.run import inputs_override

            overrides = [inputs_override(o) for o in overrides]
        if "--help" in flags:
            from stpipe.commands.help import verb_help

            print(verb_help(verb, usage_of(verb)))
            return 0
        from stpipe.commands import verb as verb_function

        with warnings.catch_warnings():
            warnings.showwarning = _show_warning(verb, warnings.showwarning)
            code = verb_function(verb)(model, overrides, flags)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except StpipeError as exc:
        print(f"stpipe {verb}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `stpipe schema | head`: the reader left, as it may; no traceback, no message
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _show_warning(verb: str, default):
    """A stpipe ConfigWarning is printed like an error (code, path, source, hint), not as Python's
    ``file.py:46: ConfigWarning`` with a source line; other warnings keep Python's format."""
    def show(message, category, filename, lineno, file=None, line=None):
        if isinstance(message, ConfigWarning):
            print(f"stpipe {verb}: {message.problem.render()}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    return show


__all__ = ["main", "USAGE", "VERBS"]


if __name__ == "__main__":  # `accelerate launch -m stpipe.cli train …`
    sys.exit(main())
