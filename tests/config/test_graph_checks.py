"""The checks of one node against the features that reach it (:mod:`stpipe.config.graph_checks`), called directly
with a hand-made :class:`Flow`; the walk through whole definitions is tests/config/test_graph.py."""

from __future__ import annotations

from types import SimpleNamespace

from stpipe.config.graph_checks import Flow, check_dims, check_inputs, check_positions, dim_of, not_input

HERE = ("modules", 1)


def io(consumes=(), requires_dim=()):
    return SimpleNamespace(consumes=dict(consumes), requires_dim=list(requires_dim))


def test_dim_of_keeps_positive_integers_only():
    assert [dim_of(v) for v in (8, 0, -1, True, 8.0, None)] == [8, None, None, None, None, None]


def test_a_missing_input_names_what_to_place_before_it():
    problems: list = []
    check_inputs(problems, io({"token_embeddings": None}), "Pooling", HERE, Flow())
    assert [(p.code, p.path, p.hint) for p in problems] == [
        ("graph.missing-input", HERE, "place a Transformer before the Pooling")]
    problems.clear()
    check_inputs(problems, io({"token_embeddings": None}), "Pooling", HERE, Flow(opaque=True))
    assert problems == []  # something unknown upstream: not reported


def test_a_feature_that_some_routes_lack_names_those_routes():
    problems: list = []
    flow = Flow(partial={"sentence_embedding": ["query"]})
    check_inputs(problems, io({"sentence_embedding": "module_input_name"}), "Dense", HERE, flow)
    assert problems[0].path == (*HERE, "module_input_name")
    assert "route 'query' of the Router before it do not produce" in problems[0].message


def test_a_dimension_mismatch_points_at_the_parameter_and_says_where_the_size_came_from():
    problems: list = []
    flow = Flow(features={"sentence_embedding": 32}, origin={"sentence_embedding": "read from the config.json"})
    check_dims(problems, io(requires_dim=[("sentence_embedding", 16, "in_features")]), "Dense", HERE, flow)
    [p] = problems
    assert (p.code, p.path, p.found, p.hint) == ("graph.dim-mismatch", (*HERE, "in_features"), "16",
                                                 "set in_features: 32")
    assert p.expected == "32 (read from the config.json)"
    problems.clear()
    check_dims(problems, io(requires_dim=[("sentence_embedding", 32, "in_features")]), "Dense", HERE, flow)
    assert problems == []


def test_routes_of_different_sizes_are_compared_one_by_one():
    problems: list = []
    flow = Flow(features={"sentence_embedding": None},
                routes={"sentence_embedding": (("modules", 0), {"query": 16, "document": 32})})
    flow.features.pop("sentence_embedding")
    check_dims(problems, io(requires_dim=[("sentence_embedding", 32, "in_features")]), "Dense", HERE, flow)
    [p] = problems
    assert "route 'query' of the Router at modules[0] delivers 16" in p.message
    assert p.hint == "end route 'query' with a Dense projecting to 32"


def test_max_seq_length_beyond_the_position_table():
    ctx = SimpleNamespace(hf_config=lambda model: {"max_position_embeddings": 128, "model_type": "bert"})
    problems: list = []
    params = {"model_name_or_path": "m", "max_seq_length": 512}
    check_positions(problems, ctx, "Transformer", params, HERE, None)
    assert [(p.code, p.path, p.hint) for p in problems] == [
        ("graph.max-seq-length", (*HERE, "max_seq_length"), "set max_seq_length: 128 (or less)")]
    problems.clear()
    check_positions(problems, ctx, "Transformer", {**params, "max_seq_length": 128}, HERE, None)
    check_positions(problems, ctx, "Pooling", params, HERE, None)
    assert problems == []


def test_a_module_that_cannot_start_the_pipeline_names_the_first_input_module_after_it():
    p = not_input("Pooling", ("modules", 0), [(("modules", 1), {"type": "Transformer"})])
    assert (p.code, p.hint) == ("graph.not-input", "move the Transformer at modules[1] before the Pooling")
    assert not_input("Pooling", ("modules", 0), []).hint == "place a Transformer (or another input module) before " \
                                                            "the Pooling"
