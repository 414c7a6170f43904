"""Who owns what in a training output directory (``out=DIR``).

stpipe records its own run in ``DIR/.stpipe-train.json``: the key of the settings the run was started with (the
model definition, the training settings except ``max_steps``/``epochs``, the loss, the data and its rows), those
settings for the message, and — once the final model is saved — the finished step and result. A rerun:

* with the same key, finished, and not asked for more steps → reports that it is finished and changes nothing;
* with the same key and ``training.max_steps``/``epochs`` raised → continues from the last checkpoint;
* with another key → refused (the old checkpoint would be resumed with the old settings), unless
  ``overwrite=force``, which removes what the record names as stpipe's own and starts clean.

A directory without the record whose entries carry names stpipe writes (``definition.yaml``, ``run.yaml``,
``model/``, ``checkpoint-N/`` …) holds someone else's files: refused, nothing touched.

>>> _changed({"lr": 1, "seed": 2}, {"lr": 3, "seed": 2})
['lr: 1 → 3']
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stpipe.errors import UsageError

RECORD = ".stpipe-train.json"
#: the names stpipe writes into a training output directory (besides ``checkpoint-N/``)
OWN = ("definition.yaml", "run.yaml", "training.yaml", "metrics.jsonl", "metrics.json", "training.png", "model")
_CHECKPOINT = re.compile(r"checkpoint-[0-9]+")
#: settings that may change between a run and its continuation
TARGET = ("max_steps", "epochs")


def summary(definition: Any, plan: Any) -> dict[str, Any]:
    """What the key covers, as JSON-able values."""
    rows = hashlib.sha256(json.dumps(plan.data.rows, default=str).encode()).hexdigest()
    return {"definition": definition,
            "training": {k: v for k, v in plan.settings.items() if k not in TARGET},
            "loss": plan.loss,
            "data": {"name": plan.data.name, "path": str(plan.data.path), "columns": list(plan.data.columns),
                     "rows": len(plan.data.rows), "rows_sha256": rows}}


def _key(s: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(s, sort_keys=True, default=str).encode()).hexdigest()


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, Mapping):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _changed(old: Any, new: Any) -> list[str]:
    a, b = _flat(json.loads(json.dumps(old, default=str))), _flat(json.loads(json.dumps(new, default=str)))
    return [f"{k}: {a.get(k, '(unset)')} → {b.get(k, '(unset)')}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)]


def _read(out: Path) -> dict[str, Any] | None:
    f = out / RECORD
    if not f.exists() and not f.is_symlink():
        return None
    try:
        if f.is_symlink() or not f.is_file():
            raise ValueError("not a regular file")
        record = json.loads(f.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or not isinstance(record.get("key"), str):
            raise ValueError("no settings key")
        return record
    except (OSError, ValueError) as exc:
        raise UsageError(f"out={out}: stpipe's record of the run there ({RECORD}) cannot be read ({exc}); choose "
                         "another out=, or remove that directory if it is yours to remove") from None


def _write(out: Path, record: Mapping[str, Any]) -> None:
    from stpipe.files import atomic_write

    with atomic_write(out / RECORD, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(record, indent=1, default=str) + "\n")


def _foreign(out: Path, written: tuple[str, ...]) -> list[str]:
    return sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir()
                  if (p.name in OWN and p.name not in written) or _CHECKPOINT.fullmatch(p.name))


def _remove_own(out: Path) -> None:
    for p in out.iterdir():
        if p.name in OWN or _CHECKPOINT.fullmatch(p.name):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()


def claim(out: Path, definition: Any, plan: Any, *, start_clean: bool = False,
          written: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """Take ``out`` for this run (see the module docstring). Returns the recorded result when the run there is
    already finished with these settings (nothing to do), else None; a UsageError when ``out`` is not ours to
    write. ``written``: names stpipe already wrote there for this run (a sweep's job directory gets
    ``definition.yaml`` and ``run.yaml`` before the job starts)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"out={out} is a file; stpipe train writes a directory: choose another out=")
    out.mkdir(parents=True, exist_ok=True)
    s = summary(definition, plan)
    key = _key(s)
    target = {k: plan.settings.get(k) for k in TARGET}
    record = _read(out)
    if record is None:
        foreign = _foreign(out, written)
        if foreign:
            raise UsageError(f"out={out} already holds {', '.join(foreign)}, which stpipe did not write there (no "
                             f"{RECORD}); stpipe never replaces files it does not own: choose another out=, or move "
                             "them away")
    elif record["key"] != key:
        if not start_clean:
            changed = _changed(record.get("settings"), s)
            shown = "; ".join(changed[:8]) + (f"; … {len(changed) - 8} more" if len(changed) > 8 else "")
            raise UsageError(f"out={out} holds a training run with other settings ({shown or 'the data changed'}); "
                             "rerunning would resume its checkpoint with the old settings. Choose another out=, or "
                             "add overwrite=force to start clean there (removes only stpipe's own files: "
                             f"{', '.join(OWN)}, checkpoint-N/)")
        _remove_own(out)
        record = None
    elif record.get("finished") is not None:
        done = record["finished"]
        step, max_steps = done.get("global_step", 0), target.get("max_steps") or 0
        if done.get("target") == target or (max_steps and step >= max_steps):
            return dict(done.get("result") or {}, global_step=step)
    _write(out, {"key": key, "settings": s, "target": target, "finished": None, "pid": os.getpid()})
    return None


def finish(out: Path, result: Mapping[str, Any], target: Mapping[str, Any]) -> None:
    """Record that the run in ``out`` ended (its final model saved) with ``result``."""
    record = _read(out)
    if record is None:
        return
    keep = {k: result[k] for k in ("main_metric", "metrics", "model") if k in result}
    record["finished"] = {"global_step": result.get("global_step"), "target": dict(target), "result": keep}
    _write(out, record)


def target_of(plan: Any) -> dict[str, Any]:
    return {k: plan.settings.get(k) for k in TARGET}
