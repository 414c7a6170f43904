"""A saved chat template renders under limits (output size, time): a template that builds a 3-billion-character
string or loops for ever is refused quickly and in bounded memory — when inputs are encoded and by validation."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time

import pytest
from conftest import make_standins

from stpipe import build
from stpipe.modules.template_limits import TemplateLimitError, set_template_limits, template_problem

HUGE = "{{ 'A' * 3000000000 }}{% for m in messages %}{{ m.content }}{% endfor %}"
HANG = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}{{ messages[0].content }}"


@pytest.fixture(scope="module")
def chat_lm(tmp_path_factory):
    return make_standins.write_tiny_chat_lm(tmp_path_factory.mktemp("chat-lm"))


def with_template(chat_lm, tmp_path, template):
    d = shutil.copytree(chat_lm, tmp_path / "hostile")
    (d / "chat_template.jinja").write_text(template)
    return d


def test_hostile_templates_are_stopped_in_bounded_time_and_memory(chat_lm, tmp_path):
    d = with_template(chat_lm, tmp_path, HUGE)
    pipe = build({"modules": [{"type": "Transformer", "model_name_or_path": str(d)},
                              {"type": "Pooling", "pooling_mode": "lasttoken"}]}, device="cpu",
                 validate=False)  # the runtime limits themselves (validation refuses it first)
    before, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(ValueError, match="3,000,000,000 items, more than the limit of 16,000,000 characters"):
        pipe.encode(["a cat"])
    (d / "chat_template.jinja").write_text(HANG)
    pipe = build({"modules": [{"type": "Transformer", "model_name_or_path": str(d)},
                              {"type": "Pooling", "pooling_mode": "lasttoken"}]}, device="cpu",
                 validate=False)  # the runtime limits themselves (validation refuses it first)
    set_template_limits(seconds=1)
    try:
        with pytest.raises(TemplateLimitError, match="took more than 1 s"):
            pipe.encode(["a cat"])
        assert "took more than 1 s" in template_problem(HANG)
    finally:
        set_template_limits(seconds=10)
    assert time.perf_counter() - t0 < 30 and (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) < 2 ** 21
    assert template_problem("{% for m in messages %}{{ m['role'] }}: {{ m.content }}\n{% endfor %}") is None


@pytest.mark.slow
def test_validate_flags_a_template_beyond_the_limits(chat_lm, tmp_path):
    d = with_template(chat_lm, tmp_path, HUGE)
    (tmp_path / "m.yaml").write_text(f"modules:\n  - type: Transformer\n    model_name_or_path: '{d}'\n"
                                     "  - type: Pooling\n    pooling_mode: lasttoken\n")
    r = subprocess.run([sys.executable, "-m", "stpipe", "validate", "m.yaml"], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert r.returncode == 2 and "check.chat-template" in r.stderr and "chat_template.jinja" in r.stderr, r.stderr
    assert "3,000,000,000 items" in r.stderr and "Traceback" not in r.stderr
