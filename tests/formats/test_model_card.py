"""The README.md stpipe writes escapes every generated value: a hostile model name cannot add YAML header keys,
Markdown blocks or HTML to the card (docs/security.md)."""

from __future__ import annotations

import yaml

from stpipe.formats.st import model_card
from stpipe.modules.normalize import Normalize
from stpipe.pipeline import Pipeline

HOSTILE = "evil\n---\nlicense: stolen\n---\n<script>alert(1)</script>\n```\n# Heading"


def test_a_hostile_name_stays_one_line_of_text():
    card = model_card(Pipeline([Normalize()], name=HOSTILE, device="cpu"))
    lines = card.splitlines()
    assert lines[0] == "---" and lines.count("---") == 2
    header = yaml.safe_load("\n".join(lines[1:lines.index("---", 1)]))
    assert set(header) == {"library_name", "tags"}
    assert "<script>" not in card and sum(line.startswith("#") and not line.startswith("##") for line in lines) == 1
    title = next(line for line in lines if line.startswith("# "))
    assert "evil" in title and "license: stolen" in title and title.count("```") == 0
