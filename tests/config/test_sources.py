"""SourceMap and YAML loading with positions: every line:col is checked against the text itself."""

from __future__ import annotations

import pytest

from stpipe.config.sources import SourceMap, load_yaml, parse_yaml
from stpipe.errors import ConfigError, Problem

TEXT = """\
# a comment
name: demo
modules:
  - type: Transformer
    model_name_or_path: all-MiniLM-L6-v2
  - type: Pooling
    pooling_mode: [cls, mean]
  - {type: Dense, in_features: 384,
     out_features: 128}
"""


def _pos(text: str, needle: str, nth: int = 0) -> str:
    """line:col (1-based) of the nth occurrence of needle, computed from the raw text."""
    idx = -1
    for _ in range(nth + 1):
        idx = text.index(needle, idx + 1)
    line = text.count("\n", 0, idx) + 1
    col = idx - (text.rfind("\n", 0, idx) + 1) + 1
    return f"{line}:{col}"


def test_every_key_and_item_has_its_position():
    data, src = parse_yaml(TEXT, "m.yaml")
    assert data["modules"][2] == {"type": "Dense", "in_features": 384, "out_features": 128}
    assert src[("name",)] == "m.yaml:" + _pos(TEXT, "name:")
    assert src[("modules", 0)] == "m.yaml:" + _pos(TEXT, "type: Transformer")
    assert src[("modules", 0, "model_name_or_path")] == "m.yaml:" + _pos(TEXT, "model_name_or_path")
    assert src[("modules", 1, "pooling_mode")] == "m.yaml:" + _pos(TEXT, "pooling_mode")
    assert src[("modules", 1, "pooling_mode", 1)] == "m.yaml:" + _pos(TEXT, "mean]")
    assert src[("modules", 2, "in_features")] == "m.yaml:" + _pos(TEXT, "in_features")
    assert src[("modules", 2, "out_features")] == "m.yaml:" + _pos(TEXT, "out_features")


def test_anchors_and_merge_keys_point_at_the_anchor():
    text = "base: &b\n  type: Pooling\nmodules:\n  - <<: *b\n    include_prompt: false\n"
    data, src = parse_yaml(text, "a.yaml")
    assert data["modules"][0] == {"type": "Pooling", "include_prompt": False}
    assert src[("modules", 0, "type")] == "a.yaml:" + _pos(text, "type")
    assert src[("modules", 0, "include_prompt")] == "a.yaml:" + _pos(text, "include_prompt")


def test_floats_parse_like_omegaconf():
    # PyYAML's YAML 1.1 resolver would read 1e-3 as a string; Hydra/OmegaConf read a float
    data, _ = parse_yaml("x: 1e-3\n")
    assert data == {"x": 0.001}


def test_lookup_falls_back_to_the_nearest_ancestor():
    src = SourceMap({(): "f:1:1", ("modules", 1): "f:6:5"})
    assert src.lookup(("modules", 1, "pooling_mode", 0)) == "f:6:5"
    assert src.lookup(("name",)) == "f:1:1"
    assert SourceMap().lookup(("x",)) is None


def test_set_subtree_replaces_descendants():
    src = SourceMap({("modules", 1): "f:6:5", ("modules", 1, "pooling_mode"): "f:7:5", ("modules", 2): "f:8:5"})
    src.set_subtree(("modules", 1), "override `model.modules.1={…}`")
    assert src.lookup(("modules", 1, "pooling_mode")) == "override `model.modules.1={…}`"
    assert src[("modules", 2)] == "f:8:5"


def test_subtree_and_apply():
    src = SourceMap({("model", "modules", 0): "c.yaml:3:3", ("batch_size",): "c.yaml:9:1"})
    sub = src.subtree(("model",))
    assert sub == {("modules", 0): "c.yaml:3:3"}
    probs = sub.apply([Problem("x.y", ("modules", 0, "type"), "m"), Problem("x.y", (), "m", source="keep")])
    assert [p.source for p in probs] == ["c.yaml:3:3", "keep"]


@pytest.mark.parametrize("text, needle, fragment", [
    ("a: b: c\n", ": c", "mapping values are not allowed here"),
    ("modules:\n  - [1, 2\n", None, "expected ',' or ']'"),
    ("a:\n\t- b\n", "\t", "found character '\\t' that cannot start any token"),
])
def test_syntax_errors_name_file_line_col(text, needle, fragment):
    with pytest.raises(ConfigError) as ei:
        parse_yaml(text, "bad.yaml")
    (p,) = ei.value.problems
    assert p.code == "yaml.syntax"
    assert fragment in p.message
    if needle is not None:
        assert p.source == "bad.yaml:" + _pos(text, needle)
    else:
        assert p.source.startswith("bad.yaml:")


def test_duplicate_key_is_an_error():
    text = "name: a\nmodules: []\nname: b\n"
    with pytest.raises(ConfigError) as ei:
        parse_yaml(text, "d.yaml")
    (p,) = ei.value.problems
    assert (p.code, p.message, p.source) == ("yaml.duplicate-key", "duplicate key 'name'",
                                             "d.yaml:" + _pos(text, "name", 1))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load_yaml(tmp_path / "nope.yaml")
    (p,) = ei.value.problems
    assert p.code == "yaml.not-found" and p.source == str(tmp_path / "nope.yaml")


def test_load_yaml_reads_files(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text(TEXT)
    data, src = load_yaml(f)
    assert data["name"] == "demo"
    assert src[("modules", 1, "type")] == f"{f}:" + _pos(TEXT, "type: Pooling")


def test_empty_document():
    assert parse_yaml("", "e.yaml") == (None, {})


def _in_subprocess(text: str) -> str:
    """parse_yaml(text) in a subprocess with a 3 GB address-space limit and a timeout: a regression (unbounded
    alias expansion) fails the test instead of exhausting the machine. Returns "code source" of the problem."""
    import subprocess
    import sys

    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
            "from stpipe.config.sources import parse_yaml\nfrom stpipe.errors import ConfigError\n"
            "try:\n    parse_yaml(sys.stdin.read(), 'b.yaml')\n    print('accepted')\n"
            "except ConfigError as e:\n    print(e.problems[0].code, e.problems[0].source)\n")
    r = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip()


def test_billion_laughs_is_refused_at_an_alias():
    bomb = "a: &a [" + ", ".join(["lol"] * 9) + "]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    code, source = _in_subprocess(bomb).split()
    assert code == "yaml.alias-bomb" and source.startswith("b.yaml:")


def test_a_few_aliases_are_fine():
    data, _ = parse_yaml("base: &b {type: Pooling}\nmodules: [*b, *b, *b]\n")
    assert data["modules"] == [{"type": "Pooling"}] * 3


def test_deep_nesting_is_refused():
    assert _in_subprocess("a: " + "[" * 150 + "]" * 150 + "\n").split()[0] == "yaml.too-deep"
    assert _in_subprocess("a: " + "[" * 5000 + "]" * 5000 + "\n").split()[0] == "yaml.too-deep"


def test_aliases_below_the_bound_are_fine():
    text = "a: &a [" + ", ".join(["x"] * 6) + "]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 6)}]\n" for p, c in zip("abc", "bcd"))  # 6**4 = 1296 values
    data, _ = parse_yaml(text)
    assert len(data["d"]) == 6 and data["d"][0][0][0] == ["x"] * 6
