"""``stpipe predict [MODEL] inputs=PAIRS.tsv|PAIRS.jsonl [output=SCORES.jsonl|.npy]``: score pairs with a
CrossEncoder.

Pairs: a ``.tsv`` file (or stdin) with ``query<TAB>document`` on each line, or ``.jsonl`` with ``["query",
"document"]`` or ``{"query": ..., "document": ...}`` per line — checked (UTF-8, two columns, JSON) before the model
loads, each problem naming ``file:line``. The model must be a CrossEncoder (``model_type: CrossEncoder``); that too
is checked before any weight loads. ``output=`` gets one ``{"score": s}`` (``{"scores": [...]}`` for several labels)
per pair, in input order, or a ``.npy`` array; without it the scores are printed as JSON lines. The run settings
``batch_size``, ``prompt_name``/``prompt``, ``apply_softmax`` and ``device`` apply.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from stpipe.commands.common import each_job, in_job_dir, pipeline, read_lines
from stpipe.commands.encode import write_output
from stpipe.config.run import show_progress
from stpipe.errors import CommandError, ConfigError, Problem


def check(composed: Any) -> None:
    """ConfigError unless the model is a CrossEncoder (before any weight loads)."""
    require_cross_encoder(composed, "predict")


def require_cross_encoder(composed: Any, verb: str) -> None:
    if composed.definition is None:  # nothing to look at before loading: predict()/rank() say it then
        return
    kind = composed.definition.get("model_type") or "SentenceTransformer"
    if kind != "CrossEncoder":
        raise ConfigError([Problem(
            code="run.model-type", path=("model_type",), found=repr(kind), expected="'CrossEncoder'",
            message=f"stpipe {verb} scores pairs with a CrossEncoder, but this model is a {kind} (it returns "
                    "embeddings)", source=(composed.sources.lookup(("model_type",)) if composed.sources else None),
            hint="use stpipe encode for embedding models, or give a model with model_type: CrossEncoder")],
            title=f"stpipe {verb} needs a CrossEncoder")


def _pair(rec: Any, where: str) -> tuple[str, str]:
    if isinstance(rec, dict):
        unknown = set(rec) - {"query", "document"}
        if unknown or set(rec) != {"query", "document"}:
            raise CommandError(f"{where}: expected {{\"query\": ..., \"document\": ...}}, found keys {sorted(rec)}")
        rec = [rec["query"], rec["document"]]
    if not isinstance(rec, list) or len(rec) != 2 or not all(isinstance(x, str) for x in rec):
        raise CommandError(f"{where}: expected a pair of strings, [\"query\", \"document\"] or "
                           f"{{\"query\": ..., \"document\": ...}}, found {json.dumps(rec)[:80]}")
    return rec[0], rec[1]


def read_pairs(inputs: Any) -> list[tuple[str, str]]:
    """(query, document) pairs from a .tsv or .jsonl file (stdin for None or '-': TSV); CommandError naming
    ``file:line`` for a malformed line."""
    inputs = inputs.get("path") if hasattr(inputs, "get") else inputs
    if inputs not in (None, "-") and not str(inputs).endswith((".tsv", ".jsonl")):
        raise CommandError(f"inputs '{inputs}': stpipe predict reads pairs from a .tsv file (query<TAB>document "
                           "per line) or a .jsonl file ([\"query\", \"document\"] per line)")
    lines, _, name = read_lines(inputs)
    pairs: list[tuple[str, str]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{n}"
        if name.endswith(".jsonl"):
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                raise CommandError(f"{where}: invalid JSON ({why})") from None
            pairs.append(_pair(rec, where))
            continue
        cols = line.split("\t")
        if len(cols) != 2:
            raise CommandError(f"{where}: expected two tab-separated columns (query, document), found {len(cols)}")
        pairs.append((cols[0], cols[1]))
    if not pairs:
        raise CommandError(f"{name}: no pairs found")
    return pairs


def write_jsonl(records: list[Any], output: str) -> None:
    """One JSON record per line, written atomically (see :func:`stpipe.commands.encode.write_output`)."""
    from stpipe.files import atomic_write

    target = Path(output)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target, "w", "utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    except OSError as exc:
        raise CommandError(f"output '{output}': cannot write it: {exc.strerror or exc}") from None


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    return each_job(model, overrides, flags, job, "predict")


def job(composed: Any, job_dir: Path | None = None) -> dict[str, Any]:
    """Score the pairs once (or as one job of a sweep). Metrics: ``pairs`` and ``mean_score`` (no main metric)."""
    run_ = composed.run
    output = in_job_dir(run_.get("output"), job_dir)
    pairs = read_pairs(run_.get("inputs"))
    t0 = time.perf_counter()
    model = pipeline(composed)
    kwargs = {k: run_[k] for k in ("batch_size", "prompt_name", "prompt") if run_.get(k) is not None}
    try:
        scores = model.predict(pairs, apply_softmax=bool(run_.get("apply_softmax")),
                               show_progress_bar=show_progress(run_), **kwargs)
    except ValueError as exc:  # an unknown prompt name …
        raise CommandError(str(exc)) from None
    seconds = time.perf_counter() - t0
    records = [{"scores": [float(x) for x in s]} if getattr(s, "ndim", 0) else {"score": float(s)} for s in scores]
    if output and output.endswith(".npy"):
        write_output(scores.reshape(len(pairs), -1), output)
    elif output:
        write_jsonl(records, output)
    else:
        for r in records:
            print(json.dumps(r))
    dest = f" -> {output}" if output else ""
    print(f"scored {len(pairs)} pair{'s' if len(pairs) != 1 else ''} with {model.name or 'model'}{dest} in "
          f"{seconds:.2f}s")
    return {"main_metric": None, "metrics": {"pairs": float(len(pairs)), "mean_score": float(scores.mean())}}
