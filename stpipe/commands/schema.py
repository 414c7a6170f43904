"""``stpipe schema``: print the combined JSON Schema of model definitions."""

from __future__ import annotations

import json


def run(model: str | None, overrides: list[str], flags: set[str]) -> int:
    from stpipe.config.schema import combined_schema

    print(json.dumps(combined_schema(), indent=2))
    return 0
