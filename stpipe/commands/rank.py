"""``stpipe rank [MODEL] query=TEXT inputs=DOCS.txt|DOCS.jsonl [top_k=K] [output=HITS.jsonl]``: rank documents
for a query with a CrossEncoder.

Documents: one per line of a text file (or stdin), or a ``.jsonl`` file with a string or ``{"text": ...}`` per line;
``query=`` is required. Both, and that the model is a CrossEncoder, are checked before any weight loads. The hits
are ``{"corpus_id", "score", "text"}`` best first (``corpus_id``: the document's index among the non-empty
inputs), as ``CrossEncoder.rank`` returns them: written to ``output=`` (.jsonl) or printed as a table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from stpipe.commands.common import each_job, in_job_dir, pipeline, read_lines
from stpipe.commands.predict import require_cross_encoder, write_jsonl
from stpipe.config.run import show_progress
from stpipe.errors import CommandError, ConfigError, Problem


def check(composed: Any) -> None:
    """ConfigError unless the model is a CrossEncoder and ``query=`` is given (before any weight loads)."""
    require_cross_encoder(composed, "rank")
    query = composed.run.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ConfigError([Problem(code="run.query", path=("query",), found=repr(query),
                                   message="stpipe rank needs the query to rank the documents for",
                                   hint="add query='your question' (quote it in the shell)")],
                          title="invalid run settings")


def read_documents(inputs: Any) -> list[str]:
    """Documents: the non-empty lines of a text file, or the strings / ``{"text"}`` records of a .jsonl file."""
    lines, _, name = read_lines(inputs)
    docs: list[str] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not name.endswith(".jsonl"):
            docs.append(line)
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise CommandError(f"{name}:{n}: invalid JSON ({why})") from None
        if isinstance(rec, dict) and list(rec) == ["text"]:
            rec = rec["text"]
        if not isinstance(rec, str):
            raise CommandError(f"{name}:{n}: expected a string or {{\"text\": ...}}, found {json.dumps(rec)[:80]}")
        docs.append(rec)
    if not docs:
        raise CommandError(f"{name}: no documents found")
    return docs


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    return each_job(model, overrides, flags, job, "rank")


def job(composed: Any, job_dir: Path | None = None) -> dict[str, Any]:
    """Rank once (or as one job of a sweep). Metrics: ``documents`` and ``top_score`` (no main metric)."""
    run_ = composed.run
    check(composed)
    output = in_job_dir(run_.get("output"), job_dir)
    docs = read_documents(run_.get("inputs"))
    t0 = time.perf_counter()
    model = pipeline(composed)
    kwargs = {k: run_[k] for k in ("batch_size", "prompt_name", "prompt", "top_k") if run_.get(k) is not None}
    try:
        hits = model.rank(run_["query"], docs, return_documents=True,
                          show_progress_bar=show_progress(run_), **kwargs)
    except ValueError as exc:  # a model with several labels, an unknown prompt name …
        raise CommandError(str(exc)) from None
    seconds = time.perf_counter() - t0
    if output:
        write_jsonl(hits, output)
    else:
        for i, h in enumerate(hits, 1):
            text = " ".join(h["text"].split())
            print(f"{i:>4}  {h['score']:.6f}  [{h['corpus_id']}]  {text[:80]}")
    dest = f" -> {output}" if output else ""
    print(f"ranked {len(docs)} document{'s' if len(docs) != 1 else ''} with {model.name or 'model'}{dest} in "
          f"{seconds:.2f}s")
    return {"main_metric": None, "metrics": {"documents": float(len(docs)), "top_score": float(hits[0]["score"])}}
