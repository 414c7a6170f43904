"""Run settings: the schema (schemas/run.schema.json) and what they need from the machine (files, device)."""

from __future__ import annotations

import pytest

from stpipe.config.run import run_file_problems, run_problems
from stpipe.config.sources import SourceMap
from stpipe.resources import conf_dir


def codes(problems):
    return [(p.code, p.path_str) for p in problems]


def test_shipped_run_config_is_valid():
    from stpipe.config.sources import load_yaml

    assert run_problems(load_yaml(conf_dir() / "config.yaml")[0]) == []  # as an editor sees it (defaults included)


def test_all_mistakes_at_once_with_their_sources():
    src = SourceMap({("batch_size",): "override `batch_size=abc`", (): "conf/config.yaml"})
    out = run_problems({"batch_size": "abc", "precision": "int4", "show_progress_bar": "yes"}, src)
    assert [(p.code, p.path_str, p.source) for p in out] == [
        ("schema.type", "batch_size", "override `batch_size=abc`"), ("schema.enum", "precision", "conf/config.yaml"),
        ("schema.type", "show_progress_bar", "conf/config.yaml")]


def test_unknown_keys_only_when_strict():
    assert codes(run_problems({"batch_sise": 3})) == [("schema.unknown-key", "batch_sise")]
    assert run_problems({"batch_sise": 3}, strict=False) == []


def test_inputs_output_and_stdin(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("hi\n")
    assert run_file_problems({"inputs": str(f), "output": "e.jsonl"}, "encode") == []
    assert run_file_problems({"inputs": "-", "output": None}, "encode") == []
    out = run_file_problems({"inputs": str(tmp_path / "nope.txt"), "output": "e.csv"}, "encode")
    assert codes(out) == [("run.inputs", "inputs"), ("run.output", "output")]
    assert out[0].message == f"inputs file '{tmp_path / 'nope.txt'}' does not exist"
    assert (out[1].expected, out[1].found, out[1].hint) == (".npy or .jsonl or .parquet", ".csv", "e.g. output=e.npy")
    assert codes(run_file_problems({"inputs": str(tmp_path)}, "encode")) == [("run.inputs", "inputs")]
    assert run_file_problems({"inputs": "nope.txt", "output": "x.csv"}, "validate") == []  # validate reads neither


@pytest.mark.parametrize("device, visible, problem", [
    ("cpu", 0, None), (None, 0, None), ("cuda", 0, "is not available"), ("cuda", 1, None),
    ("cuda:0", 1, None), ("cuda:1", 1, "does not exist: 1 GPU is visible"), ("mps", 0, "is not available"),
])
def test_device_must_be_available(monkeypatch, device, visible, problem):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: visible > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    out = run_file_problems({"device": device}, "export")
    if problem is None:
        assert out == []
    else:
        assert codes(out) == [("run.device", "device")] and problem in out[0].message


def test_task_and_prompt_name_are_checked_against_the_model_before_weights_load():
    from stpipe.config.compose import compose
    from stpipe.errors import ConfigError

    with pytest.raises(ConfigError) as e:  # asymmetric: a Router with routes query, document
        compose(None, ["model=asymmetric", "task=querry"])
    (p,) = e.value.problems
    assert (p.code, p.path_str, p.hint) == ("run.task", "task", "did you mean 'query'?")
    assert "'query'" in p.expected and "'document'" in p.expected and "task=querry" in p.source
    with pytest.raises(ConfigError) as e:  # no Router: query, document, the prompt names
        compose(None, ["model=minilm", "task=querry", "prompt_name=documnt"])
    assert [(p.code, p.hint) for p in e.value.problems] == [("run.task", "did you mean 'query'?"),
                                                            ("run.prompt_name", "did you mean 'document'?")]
    assert compose(None, ["model=asymmetric", "task=document", "prompt_name=query"]).run["task"] == "document"


def test_a_catch_all_mapping_serves_every_task():
    from stpipe.config.run import run_model_problems

    router = {"type": "Router", "sub_modules": {"a": [], "b": []}, "route_mappings": [{"route": "a"}]}
    assert run_model_problems({"task": "anything"}, {"modules": [router]}) == []
    router["route_mappings"] = [{"modality": "text", "route": "a"}]  # any task with text goes to route a
    assert run_model_problems({"task": "anything"}, {"modules": [router]}) == []
    router["route_mappings"] = [{"task": "search", "modality": "text", "route": "a"}]
    assert codes(run_model_problems({"task": "anything"}, {"modules": [router]})) == [("run.task", "task")]
