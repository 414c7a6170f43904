"""``stpipe import DIR``: print a YAML model definition that rebuilds a saved sentence-transformers model.

Everything printed is either written by the YAML emitter (the definition) or a comment whose variable part is a
JSON string (ASCII, escaped: a directory name with a newline cannot start a line of YAML). The text is parsed
back before it is printed and must give the definition again. Nothing is interpolated: a saved config is read as
JSON, so no environment value is ever resolved into the output.
"""

from __future__ import annotations

import json
from pathlib import Path

from stpipe.commands.common import schema_url
from stpipe.errors import CommandError


def definition_yaml(definition: dict, source: str | Path) -> str:
    """The YAML text ``stpipe import`` prints for ``definition`` read from ``source``."""
    import yaml

    body = yaml.safe_dump(definition, sort_keys=False, allow_unicode=False).rstrip()
    text = "\n".join(["# yaml-language-server: $schema=" + schema_url(),
                      f"# imported from {json.dumps(str(source))} by `stpipe import`", body]) + "\n"
    if yaml.safe_load(text) != definition:  # pragma: no cover - the emitter's own guarantee, checked
        raise CommandError(f"cannot write {json.dumps(str(source))} as YAML faithfully")
    return text


def saved_name(folder: Path) -> str | None:
    """The model's name as stpipe saved it: the heading of the model card stpipe writes (``README.md``, a regular
    file of at most 1 MB, Markdown escapes undone); None for a card stpipe did not write or a model without one."""
    import re

    card = folder / "README.md"
    try:
        if card.is_symlink() or not card.is_file() or card.stat().st_size > 1_000_000:
            return None
        text = card.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    heading = re.search(r"^# (.+)$", text, re.M)
    if " saved by stpipe " not in text or heading is None:
        return None
    name = re.sub(r"\\(.)", r"\1", heading.group(1)).strip()
    return name if name and name != "stpipe model" else None


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    from stpipe.formats.st import to_definition

    if model is None:
        raise CommandError("usage: stpipe import DIR  (DIR: a model saved in sentence-transformers' format)")
    if overrides:
        raise CommandError(f"stpipe import takes no overrides (got {' '.join(overrides)}); edit the printed YAML, "
                           "or give the overrides to `stpipe validate/encode` with it")
    if not Path(model).is_dir():
        what = "is a file, not a directory" if Path(model).exists() else "does not exist"
        raise CommandError(f"'{model}' {what}; stpipe import reads a directory saved in "
                           "sentence-transformers' format (modules.json, config files and weights)")
    definition = to_definition(model)
    name = saved_name(Path(model))
    if name is not None:  # the saved name, not the directory's
        definition["name"] = name
    print(definition_yaml(definition, Path(model).resolve()), end="")
    return 0
