"""What the composition tests share: a small config directory (``conf``) with two model options."""

from __future__ import annotations

import pytest

CONFIG = """\
defaults:
  - model: small
  - _self_

batch_size: 32
device: cpu
"""

SMALL = """\
# a small model
name: small
modules:
  - type: Transformer
    model_name_or_path: enc
  - type: Pooling
    pooling_mode: mean
  - type: Normalize
"""

OTHER = """\
name: other
modules:
  - {type: Transformer, model_name_or_path: enc}
  - {type: Pooling, pooling_mode: cls}
"""


def _pos(text: str, needle: str) -> str:
    i = text.index(needle)
    return f"{text.count(chr(10), 0, i) + 1}:{i - text.rfind(chr(10), 0, i)}"


@pytest.fixture
def conf(tmp_path):
    d = tmp_path / "conf"
    (d / "model").mkdir(parents=True)
    (d / "config.yaml").write_text(CONFIG)
    (d / "model" / "small.yaml").write_text(SMALL)
    (d / "model" / "other.yaml").write_text(OTHER)
    return d


def problems(exc_info):
    return [(p.code, p.path_str, p.source, p.hint) for p in exc_info.value.problems]
