"""``stpipe VERB --help``: the verb's usage, its run settings with their defaults and descriptions, one example.

Generated, never written by hand: the descriptions come from ``schemas/run.schema.json`` (what the validator
checks the settings against) and the defaults from ``conf/config.yaml`` (what the composition starts from), so
the help cannot drift from either; :data:`SETTINGS` only says which settings each verb reads (a test checks that
every name is a key of the schema, and every key of the schema is read by some verb).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_RUN = ("device", "threads", "trust_remote_code", "allow_pickle")
#: verb → the run settings it reads (keys of schemas/run.schema.json)
SETTINGS: dict[str, tuple[str, ...]] = {
    "encode": ("inputs", "output", "batch_size", "max_batch_tokens", "task", "modality", "prompt_name", "prompt",
               "normalize_embeddings", "truncate_dim", "precision", "chunk_size", "workers", "engine", "shard",
               "ray", "resume", "show_progress_bar", "max_input_chars", "max_workers", "max_image_pixels", *_RUN),
    "predict": ("inputs", "output", "batch_size", "prompt_name", "prompt", "apply_softmax", "show_progress_bar",
                *_RUN),
    "rank": ("query", "inputs", "output", "top_k", "batch_size", "prompt_name", "prompt", "show_progress_bar",
             *_RUN),
    "evaluate": ("data", "out", "batch_size", "truncate_dim", "backend", "quantize", "optimize", "calibration",
                 "show_progress_bar", "metric", "resume", "max_sweep_points", *_RUN),
    "train": ("data", "loss", "training", "out", "overwrite", "metric", "resume", *_RUN),
    "validate": ("training", "trust_remote_code", "allow_pickle"),
    "export": ("out", "overwrite", "format", "quantize", "optimize", "calibration", *_RUN),
    "merge": ("out",),
    "report": ("out",),
    "import": (),
    "schema": (),
    "serve": ("serve", "engine", "ray", "workers", "batch_size", "max_batch_tokens", *_RUN),
}
#: verb → one example command
EXAMPLES = {
    "encode": "stpipe encode model=minilm inputs=examples/data/sentences.txt output=/tmp/emb.npy",
    "predict": "stpipe predict model=reranker inputs=examples/data/pairs.tsv output=/tmp/scores.jsonl",
    "rank": "stpipe rank model=reranker query='How many people live in Berlin?' inputs=examples/data/documents.txt "
            "top_k=2",
    "evaluate": "stpipe evaluate model=minilm data=stsb-dev out=/tmp/eval",
    "train": "stpipe train model=minilm data=stsb-train loss=cosent training.max_steps=50 out=runs/cosent",
    "validate": "stpipe validate conf/model/minilm.yaml --explain",
    "export": "stpipe export model=minilm out=/tmp/minilm-st",
    "merge": "stpipe merge /tmp/corpus/sh",
    "report": "stpipe report runs/lr",
    "import": "stpipe import /tmp/minilm-st > /tmp/minilm.yaml",
    "schema": "stpipe schema > /tmp/pipeline.schema.json",
    "serve": "stpipe serve model=minilm port=8000",
}


def _shown(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def _described(schema: Mapping[str, Any]) -> str:
    text = schema.get("description") or ""
    enum = schema.get("enum")
    if not text and enum:
        text = "one of: " + ", ".join(_shown(e) for e in enum)
    return " ".join(text.split())


def _sub_schema(schema: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    for branch in [schema, *schema.get("anyOf", [])]:
        sub = (branch.get("properties") or {}).get(key)
        if isinstance(sub, Mapping):
            return sub
    return {}


def _rows(key: str, schema: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    default = defaults.get(key)
    shown = "" if isinstance(default, Mapping) or key not in defaults else _shown(default)  # groups: no default
    rows = [(key, shown, _described(schema))]
    if isinstance(default, Mapping) and key not in ("data", "training", "loss"):
        rows += [(f"{key}.{k}", _shown(v), _described(_sub_schema(schema, k))) for k, v in default.items()]
    return rows


def verb_help(verb: str, usage_line: str) -> str:
    """The help page of ``verb``: ``usage_line``, its settings (name, default, description), an example."""
    import textwrap

    import yaml

    from stpipe.config.schema import load_schema
    from stpipe.resources import conf_dir

    props = load_schema("run.schema.json")["properties"]
    defaults = yaml.safe_load((conf_dir() / "config.yaml").read_text(encoding="utf-8"))
    lines = [f"usage: {usage_line}", ""]
    keys = SETTINGS[verb]
    if keys:
        lines.append("settings (key=value; defaults from conf/config.yaml, checked against schemas/run.schema.json):")
    for key in keys:
        for name, default, text in _rows(key, props[key], defaults):
            head = f"  {name}" + (f" (default {default})" if default else "")
            lines.append(head)
            lines += textwrap.wrap(text, 110, initial_indent="      ", subsequent_indent="      ")
    if verb == "train":  # the training group: schemas/training.schema.json over conf/training/default.yaml
        from stpipe.training.config import SCHEMA
        from stpipe.training.config import defaults as training_defaults

        lines += ["", "training settings (training.KEY=VALUE; defaults from conf/training/default.yaml, checked "
                  "against schemas/training.schema.json):"]
        tprops = load_schema(SCHEMA)["properties"]
        tdefaults = training_defaults()
        for key, schema in tprops.items():
            head = f"  training.{key}" + (f" (default {_shown(tdefaults[key])})" if key in tdefaults else "")
            lines.append(head)
            lines += textwrap.wrap(_described(schema), 110, initial_indent="      ", subsequent_indent="      ")
    lines += ["", f"example:\n  {EXAMPLES[verb]}", "",
              "Every verb takes MODEL (a YAML file or saved model directory) or model=NAME, model.* overrides, and "
              "-m for a sweep; see `stpipe --help`."]
    return "\n".join(lines)
