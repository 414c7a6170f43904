"""validate(): all three stages, every problem at once, sources, warnings, never another exception type."""

from __future__ import annotations

import json
import warnings

import pytest

from stpipe.config.sources import SourceMap
from stpipe.config.validate import explain, inspect_definition, routing_table, validate
from stpipe.errors import ConfigError, ConfigWarning

FIVE = """\
name: five-mistakes
modules:
  - type: Router
    default_route: document
    sub_modules:
      query:
        - type: Pooling
          pooling_mode: mean
        - type: Transformer
          model_name_or_path: cfgonly
      document:
        - type: Transformer
          model_name_or_path: cfgonly
          max_seq_lenght: 128
        - type: Pooling
        - type: Dense
          in_features: 768
          out_features: 128
    route_mappings:
      - {task: query, route: qeury}
  - type: Normalise
"""


def _line_col(text: str, needle: str) -> str:
    i = text.index(needle)
    return f"{text.count(chr(10), 0, i) + 1}:{i - text.rfind(chr(10), 0, i)}"


@pytest.fixture
def five(tmp_path):
    """The five-mistake model next to a model directory holding only config.json (hidden size 384)."""
    (tmp_path / "cfgonly").mkdir()
    (tmp_path / "cfgonly" / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 384,
                                                                  "vocab_size": 100}))
    f = tmp_path / "five.yaml"
    f.write_text(FIVE)
    return f


def test_five_mistakes_in_one_error(five):
    with pytest.raises(ConfigError) as ei:
        validate(five)
    errors = ei.value.errors
    got = [(p.code, p.path_str, p.source) for p in errors]
    at = f"{five}:"
    assert got == [
        ("schema.unknown-key", "modules[0].sub_modules.document[0].max_seq_lenght", at + _line_col(FIVE, "max_seq_")),
        ("registry.unknown-type", "modules[1].type", at + _line_col(FIVE, "type: Normalise")),
        ("check.route-target", "modules[0].route_mappings[0].route", at + _line_col(FIVE, "route: qeury")),
        ("graph.not-input", "modules[0].sub_modules.query[0]", at + _line_col(FIVE, "type: Pooling")),
        ("graph.dim-mismatch", "modules[0].sub_modules.document[2].in_features", at + _line_col(FIVE, "in_features")),
    ]
    hints = [p.hint for p in errors]
    assert hints[:3] == ["did you mean 'max_seq_length'?", "did you mean 'Normalize'?",
                         "did you mean 'query'? available routes: query, document"]
    assert hints[3] == "move the Transformer at modules[0].sub_modules.query[1] before the Pooling"
    dim = errors[4]
    assert (dim.expected, dim.found) == (
        "384 (read from the config.json of 'cfgonly' by the Transformer at modules[0].sub_modules.document[0], "
        "through the Pooling at modules[0].sub_modules.document[1])", "768")
    assert not (five.parent / "cfgonly" / "model.safetensors").exists()  # nothing but config.json was there


GOLDEN_DIM = """\
invalid model definition: 1 problem
error [graph.dim-mismatch] modules[2].in_features: Dense expects 'sentence_embedding' of dimension 768, but 384 arrives
    at m.yaml:9:5
    expected: 384 (read from the config.json of 'all-MiniLM-L6-v2' by the Transformer at modules[0], through the \
Pooling at modules[1])
    found: 768
    hint: set in_features: 384"""

GOLDEN_ENUM = """\
error [schema.enum] modules[1].pooling_mode: 'meen' is not an allowed value
    at override `model.modules.1.pooling_mode=meen`
    expected: one of: 'cls', 'max', 'mean', 'mean_sqrt_len_tokens', 'weightedmean', 'lasttoken'
    found: 'meen'
    hint: did you mean 'mean'?"""

GOLDEN_TYPE = """\
error [registry.unknown-type] modules[1].type: unknown module type 'Poolng'
    expected: one of: Dense, GraphEncoder, LogitScore, Normalize, Pooling, Router, SparseStaticEmbedding, \
SpladePooling, StaticEmbedding, Transformer
    found: 'Poolng'
    hint: did you mean 'Pooling'?"""

GOLDEN_ROUTE = """\
error [check.route-target] modules[0].route_mappings[0].route: route mapping points to 'qeury', which is not a \
route of this Router
    expected: one of: query, document
    found: 'qeury'
    hint: did you mean 'query'? available routes: query, document"""


def test_golden_messages(minilm_dir):
    minilm = {"type": "Transformer", "model_name_or_path": "all-MiniLM-L6-v2"}
    defn = {"modules": [minilm, {"type": "Pooling"}, {"type": "Dense", "in_features": 768, "out_features": 8}]}
    with pytest.raises(ConfigError) as ei:
        validate(defn, sources=SourceMap({("modules", 2, "in_features"): "m.yaml:9:5"}))
    assert ei.value.render() == GOLDEN_DIM

    src = SourceMap({("modules", 1, "pooling_mode"): "override `model.modules.1.pooling_mode=meen`"})
    with pytest.raises(ConfigError) as ei:
        validate({"modules": [minilm, {"type": "Pooling", "pooling_mode": "meen"}]}, sources=src)
    assert [p.render() for p in ei.value.problems] == [GOLDEN_ENUM]

    with pytest.raises(ConfigError) as ei:
        validate({"modules": [minilm, {"type": "Poolng"}]})
    assert [p.render() for p in ei.value.problems] == [GOLDEN_TYPE]

    router = {"type": "Router", "sub_modules": {"query": [minilm, {"type": "Pooling"}],
                                                "document": [minilm, {"type": "Pooling"}]},
              "route_mappings": [{"task": "query", "route": "qeury"}]}
    with pytest.raises(ConfigError) as ei:
        validate({"modules": [router]})
    assert [p.render() for p in ei.value.problems] == [GOLDEN_ROUTE]


def test_valid_definition_returns_a_plain_dict(tiny_bert_dir):
    from omegaconf import OmegaConf

    defn = OmegaConf.create({"modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                                         {"type": "Pooling", "pooling_mode": ("cls", "mean")},
                                         {"type": "Dense", "in_features": 64, "out_features": 4}]})
    out = validate(defn)
    assert type(out) is dict and type(out["modules"]) is list
    assert out["modules"][1]["pooling_mode"] == ["cls", "mean"]


def test_warnings_are_emitted_not_raised(tiny_bert_dir):
    t = {"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)}
    defn = {"modules": [t, {"type": "Pooling"}, {"type": "Router", "sub_modules": {
        "a": [{"type": "Normalize"}], "b": [{"type": "Normalize"}]}, "route_mappings": [{"route": "a"}]}]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert validate(defn)["modules"][0] == t
    (w,) = [w for w in caught if issubclass(w.category, ConfigWarning)]
    assert (w.message.problem.code, w.message.problem.path_str) == ("check.unreachable-route",
                                                                     "modules[2].sub_modules.b")
    report = inspect_definition(defn)
    assert [p.code for p in report.warnings] == ["check.unreachable-route"] and report.errors == []


def test_relative_paths_resolve_against_the_yaml_file(tmp_path, tiny_bert_dir):
    import shutil

    shutil.copytree(tiny_bert_dir, tmp_path / "enc")
    f = tmp_path / "sub" / "m.yaml"
    f.parent.mkdir()
    f.write_text("modules:\n  - {type: Transformer, model_name_or_path: ../enc}\n  - {type: Pooling}\n"
                 "  - {type: Dense, in_features: 32, out_features: 4}\n")
    assert validate(f)["modules"][0]["model_name_or_path"] == "../enc"


def test_unreadable_yaml_is_a_config_error(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("modules:\n  - type: Pooling\n   pooling_mode: mean\n")
    with pytest.raises(ConfigError) as ei:
        validate(f)
    assert ei.value.codes == ["yaml.syntax"] and ei.value.problems[0].source.startswith(f"{f}:3:")
    with pytest.raises(ConfigError) as ei:
        validate(tmp_path / "missing.yaml")
    assert ei.value.codes == ["yaml.not-found"]


WEIRD = [None, 0, "x", [], [1], {}, {"modules": None}, {"modules": {}}, {"modules": [None]},
         {"modules": [[]]}, {"modules": [{"type": None}]}, {"modules": [{"type": ["Pooling"]}]},
         {"modules": [{"type": "Router", "sub_modules": None}]},
         {"modules": [{"type": "Router", "sub_modules": {"a": [None, {"ref": 3}, {"type": "Router"}]}}]},
         {"modules": [{"type": "Transformer", "model_name_or_path": None, "model_kwargs": [1]}]},
         {"modules": [{"type": "Dense", "in_features": "3", "out_features": -1, "activation_function": 3}]},
         {"modules": [{"type": "Pooling", "pooling_mode": {"a": 1}, "embedding_dimension": 1.5}]},
         {"modules": [{"type": "os.system"}], "prompts": [1]}, {1: 2, None: [3], "modules": [{"type": "Normalize"}]},
         {"modules": [{"ref": "x", "id": "x"}, {"type": "StaticEmbedding", "tokenizer": None}]}]


@pytest.mark.parametrize("defn", WEIRD)
def test_never_raises_anything_but_config_error(defn):
    with pytest.raises(ConfigError) as ei:  # every one of them is invalid: a ConfigError, never another exception
        validate(defn)
    assert ei.value.errors and not [c for c in ei.value.codes if c.endswith(".internal")], ei.value.render()


def test_self_referencing_dict_is_a_config_error():
    d: dict = {"modules": []}
    d["modules"].append(d)
    with pytest.raises(ConfigError) as ei:
        validate(d)
    assert ei.value.codes == ["schema.depth"]


def test_explain_lists_classes_features_and_routes(tiny_bert_dir):
    bert = str(tiny_bert_dir)
    defn = {"modules": [{"type": "Router", "default_route": "document",
                         "sub_modules": {"query": [{"type": "Transformer", "model_name_or_path": bert, "id": "e"},
                                                   {"type": "Pooling"}],
                                         "document": [{"ref": "e"}, {"type": "Pooling", "pooling_mode": "cls"}]},
                         "route_mappings": [{"modality": ["text", "image"], "route": "document"},
                                            {"task": "query", "modality": "text", "route": "query"}]},
                        {"type": "Normalize"}]}
    text = explain(defn)
    assert "modules[0]  Router  stpipe.modules.router.Router  (" in text
    assert "modules[0].sub_modules.query[0]  Transformer  stpipe.modules.transformer.Transformer  (" in text
    assert "modules[0].sub_modules.document[0]  → same instance as id 'e'" in text
    assert "    → attention_mask, input_ids, token_embeddings[32]\n" in text  # the Transformer's outputs
    assert "  → sentence_embedding[32]\n" in text  # the Router's (both routes agree)
    assert text.endswith("valid")
    assert routing_table(defn["modules"][0]) == [
        "1. task='query' and modality='text' → query",
        "2. modality=('image', 'text') → document",
        "3. task=<route name> → that route (query, document)",
        "4. modality=<route name> → that route (query, document)",
        "5. otherwise → document"]


def test_routing_table_shows_modalities_as_the_router_matches_them():
    node = {"type": "Router", "sub_modules": {"a": [], "b": []},
            "route_mappings": [{"modality": ["text"], "route": "a"}, {"modality": "image+text", "route": "b"}]}
    assert routing_table(node)[:2] == ["1. modality='text' → a", "2. modality=('image', 'text') → b"]


def test_explain_shows_the_dims_of_a_loaded_module(tiny_bert_dir, tmp_path):
    from stpipe.modules.dense import Dense

    Dense(in_features=32, out_features=5).save(str(tmp_path / "dense"))
    text = explain({"modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                                {"type": "Pooling"}, {"type": "Dense", "load_from": str(tmp_path / "dense")}]})
    assert "modules[2]  Dense  stpipe.modules.dense.Dense  (" in text
    assert text.endswith("    → sentence_embedding[5]\nvalid")


def test_explain_reports_problems_instead_of_raising():
    text = explain({"modules": [{"type": "Pooling"}]})
    assert "1 error, 0 warning(s):" in text and "graph.not-input" in text


@pytest.mark.parametrize("module", ["sources", "schema", "schema_derived", "checks", "validate", "run"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"stpipe.config.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_config_warning_pickles():
    import pickle

    from stpipe.errors import Problem

    w = ConfigWarning(Problem("check.x", ("modules", 0), "m", severity="warning"))
    assert pickle.loads(pickle.dumps(w)).problem == w.problem
