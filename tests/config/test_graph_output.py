"""What the end of the graph must hold for the model type (:mod:`stpipe.config.graph_output`)."""

from __future__ import annotations

from types import SimpleNamespace

from stpipe.config.graph_output import output_problems

MODULES = {"modules": [{"type": "Transformer"}]}


def _codes(definition, features, trace=(), unread=None):
    return [(p.code, p.path) for p in output_problems(definition, features, list(trace), unread)]


def test_each_model_type_needs_what_it_returns():
    assert _codes(MODULES, {"sentence_embedding": 8}) == []
    assert _codes(MODULES, {"token_embeddings": 8}) == [("graph.no-output", ("modules",))]
    assert _codes({**MODULES, "model_type": "CrossEncoder"}, {"scores": 1}) == []
    assert _codes({**MODULES, "model_type": "CrossEncoder"}, {"sentence_embedding": 8}) == [
        ("graph.no-output", ("modules",))]
    assert _codes({"modules": []}, {}) == []  # an empty pipeline is the schema's to report


def test_a_task_output_nothing_reads_is_reported_at_the_module_that_produced_it():
    trace = [SimpleNamespace(path=("modules", 0), type="Transformer", produced={"scores": 2})]
    [p] = output_problems(MODULES, {"scores": 2}, trace)
    assert (p.code, p.path) == ("graph.unconsumed", ("modules", 0, "transformer_task"))
    assert p.hint.startswith("set model_type: CrossEncoder")
    assert _codes(MODULES, {"sentence_embedding": 8}, unread={"causal_logits": ("modules", 0)}) == [
        ("graph.unconsumed", ("modules", 0, "transformer_task"))]
