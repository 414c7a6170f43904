"""What a saved sentence-transformers 6.2 model directory holds, written from a :class:`~stpipe.pipeline.Pipeline`:
``config_sentence_transformers.json``, one folder per module, ``modules.json`` (written last: it marks a complete
model) and a README.md model card whose every generated value is escaped."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stpipe import files, registry
from stpipe.errors import LoadError, StpipeError

if TYPE_CHECKING:  # reading a saved model (stpipe validate DIR) imports this module without torch
    from stpipe.pipeline import Pipeline

ST_VERSION = "6.2.0"  # the sentence-transformers format version stpipe writes
MODULES_JSON = "modules.json"
MODEL_CONFIG = "config_sentence_transformers.json"


def model_config(pipeline: Pipeline) -> dict[str, Any]:
    """The content of ``config_sentence_transformers.json`` for this pipeline."""
    import torch
    import transformers

    config: dict[str, Any] = {
        "model_type": pipeline.model_type,
        "__version__": {"sentence_transformers": ST_VERSION, "transformers": transformers.__version__,
                        "pytorch": torch.__version__},
        "prompts": dict(pipeline.prompts),
        "default_prompt_name": pipeline.default_prompt_name,
        "similarity_fn_name": pipeline.similarity_fn_name,
    }
    if pipeline.model_type == "SparseEncoder":
        if pipeline.max_active_dims is not None:
            config["max_active_dims"] = pipeline.max_active_dims
    elif pipeline.truncate_dim is not None:
        config["truncate_dim"] = pipeline.truncate_dim
    if pipeline.model_type == "CrossEncoder":
        from stpipe.formats.cross_encoder import config_entries

        return config_entries(pipeline, config)
    return config


def write_model_dir(pipeline: Pipeline, out: Path, safe_serialization: bool = True, *,
                    create_model_card: bool = True, shown_as: Path | None = None) -> None:
    """Write the model files into ``out`` (an existing, empty directory); a module that cannot be written is a
    LoadError naming its folder under ``shown_as`` (the save's target)."""
    shown = shown_as or out
    _write_text(out / MODEL_CONFIG, json.dumps(model_config(pipeline), indent=2, sort_keys=True), shown)
    entries = []
    for idx, (name, module) in enumerate(pipeline._modules.items()):
        sub = "" if idx == 0 and getattr(module, "save_in_root", False) else f"{idx}_{type(module).__name__}"
        files.fs.step(f"module {idx}")
        try:
            (out / sub).mkdir(mode=0o777, parents=True, exist_ok=True)
            params = inspect.signature(module.save).parameters
            if "safe_serialization" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
                module.save(str(out / sub), safe_serialization=safe_serialization)
            else:
                module.save(str(out / sub))
        except StpipeError:
            raise
        except Exception as exc:  # disk full (OSError 28, SafetensorError), permissions, …
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
            raise LoadError(f"cannot write module '{name}' ({type(module).__name__}): {why}",
                            path=str(shown / sub), hint="check the free disk space and the permissions") from None
        entry: dict[str, Any] = {"idx": idx, "name": name, "path": sub, "type": registry.st_type_of(module)}
        if pipeline.module_kwargs.get(name):
            entry["kwargs"] = list(pipeline.module_kwargs[name])
        entries.append(entry)
    if create_model_card:
        _write_text(out / "README.md", model_card(pipeline), shown)
    _write_text(out / MODULES_JSON, json.dumps(entries, indent=2), shown)  # last: it marks a complete model


def _write_text(path: Path, text: str, shown: Path) -> None:
    files.fs.step(f"write {path.name}")
    try:
        path.write_text(text, encoding="utf8")
    except OSError as exc:
        raise LoadError(f"cannot write the model: {exc.strerror or exc}", path=str(shown / path.name),
                        hint="check the free disk space and the permissions") from None


def _md(text: str) -> str:
    """``text`` as one line of literal Markdown: no line breaks, Markdown/HTML characters escaped."""
    one_line = " ".join(str(text).split())
    return "".join("\\" + c if c in "\\`*_{}[]<>#|~" else c for c in one_line)


def _fence(body: str) -> str:
    """A code fence longer than any backtick run inside ``body``."""
    longest = max((len(run) for run in re.findall("`+", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}\n{body}\n{ticks}"


def model_card(pipeline: Pipeline) -> str:
    """A minimal README.md. The YAML header holds constants only; every value from the model (its name, module
    descriptions) is escaped, so it cannot add header keys, Markdown or HTML."""
    from stpipe import __version__

    tags = ["sentence-transformers", "stpipe", {"SparseEncoder": "sparse-encoder", "CrossEncoder": "cross-encoder"}
            .get(pipeline.model_type, "sentence-similarity")]
    arch = "\n".join(f"  ({name}): {module!r}" for name, module in pipeline._modules.items())
    if pipeline.model_type == "CrossEncoder":
        facts = f"- Activation: {_md(pipeline.activation_fn_name)}\n- Labels: {pipeline.num_labels}"
        call, cls = 'scores = model.predict([("How many people live in Berlin?", "Berlin has 3.7 million ' \
                    'inhabitants.")])', "CrossEncoder"
    else:
        facts = (f"- Similarity function: {_md(str(pipeline.similarity_fn_name))}\n"
                 f"- Output dimension: {pipeline.get_embedding_dimension()}")
        call, cls = 'embeddings = model.encode(["The weather is lovely today."])', "SentenceTransformer"
    return ("---\nlibrary_name: sentence-transformers\ntags:\n" + "".join(f"- {t}\n" for t in tags) + "---\n\n"
            f"# {_md(pipeline.name or 'stpipe model')}\n\n"
            f"A {pipeline.model_type} saved by stpipe {__version__} in the sentence-transformers {ST_VERSION} "
            f"format.\n\n{facts}\n\n"
            f"## Architecture\n\n{_fence(f'{pipeline.model_type}(' + chr(10) + arch + chr(10) + ')')}\n\n"
            "## Usage\n\n```python\nimport stpipe\n\nmodel = stpipe.load(\"path/to/this/model\")\n"
            f"{call}\n```\n\n"
            f"sentence-transformers loads it too: `{cls}(\"path/to/this/model\")`.\n")
