"""Stage 3: feature/dimension flow through every path, with small fake modules (and the real Pooling/Dense)."""

from __future__ import annotations

import json

import pytest

from stpipe import registry
from stpipe.config.graph import GraphContext, check_graph, walk_graph
from stpipe.errors import ConfigError, Problem
from stpipe.modules.module import FeatureIO, InputModule, Module


class _Base(Module):
    def forward(self, features, **kw):
        return features

    def save(self, output_path, *args, **kwargs):
        pass


class FakeEncoder(InputModule, _Base):
    """Reads its hidden size from config.json, like a Transformer."""

    @classmethod
    def describe(cls, params, upstream, ctx=None):
        cfg = ctx.hf_config(params["model"]) if ctx is not None else None
        return FeatureIO(produces={"input_ids": None, "attention_mask": None,
                                   "token_embeddings": (cfg or {}).get("hidden_size")})


class FakeStatic(InputModule, _Base):
    @classmethod
    def describe(cls, params, upstream, ctx=None):
        return FeatureIO(produces={"sentence_embedding": params.get("dim")})


class FakePool(_Base):
    @classmethod
    def describe(cls, params, upstream, ctx=None):
        return FeatureIO(consumes={"token_embeddings": ""},
                         produces={"sentence_embedding": upstream.get("token_embeddings")})


class FakeProj(_Base):
    @classmethod
    def describe(cls, params, upstream, ctx=None):
        src = params.get("src", "sentence_embedding")
        return FeatureIO(consumes={src: "src"}, produces={"sentence_embedding": params["out"]},
                         requires_dim=[(src, params["in"], "in")])


class FakeBroken(_Base):
    @classmethod
    def describe(cls, params, upstream, ctx=None):
        if params.get("config_error"):
            raise ConfigError([Problem("check.fake", ("size",), "bad size")])
        raise KeyError("size")


FAKES = {"FakeEncoder": FakeEncoder, "FakeStatic": FakeStatic, "FakePool": FakePool, "FakeProj": FakeProj,
         "FakeBroken": FakeBroken}


@pytest.fixture(autouse=True)
def fakes():
    for name, cls in FAKES.items():
        registry.register(cls, name=name)
    yield
    for name in FAKES:
        registry.unregister(name)


@pytest.fixture
def enc_dir(tmp_path):
    """A model directory holding only config.json: no weights exist, so none can be read."""
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "config.json").write_text(json.dumps({"hidden_size": 16}))
    return tmp_path / "enc"


def enc(d):
    return {"type": "FakeEncoder", "model": str(d)}


def proj(n_in, n_out, **kw):
    return {"type": "FakeProj", "in": n_in, "out": n_out, **kw}


def graph(*modules, ctx=None, **top):
    return [(p.code, p.path_str) for p in check_graph({"modules": list(modules), **top}, ctx or GraphContext())]


def test_valid_chain_reads_only_config_json(enc_dir):
    ctx = GraphContext()
    problems, trace = walk_graph({"modules": [enc(enc_dir), {"type": "FakePool"}, proj(16, 8)]}, ctx)
    assert problems == []
    assert ctx.read == [str(enc_dir / "config.json")]
    assert trace[-1].features["sentence_embedding"] == 8


def test_dim_mismatch_points_at_the_parameter(enc_dir):
    (p,) = check_graph({"modules": [enc(enc_dir), {"type": "FakePool"}, proj(32, 8)]}, GraphContext())
    assert (p.code, p.path_str, p.found) == ("graph.dim-mismatch", "modules[2].in", "32")
    assert p.expected == "16 (sentence_embedding of the FakePool at modules[1])"
    assert p.hint == "set in: 16"


def test_dim_origin_names_the_model_config(enc_dir):
    (p,) = check_graph({"modules": [enc(enc_dir), proj(8, 4, src="token_embeddings")]}, GraphContext())
    assert (p.code, p.path_str) == ("graph.dim-mismatch", "modules[1].in")
    assert p.expected == "16 (token_embeddings of the FakeEncoder at modules[0])"


def test_first_module_must_be_an_input_module(enc_dir):
    (p,) = check_graph({"modules": [{"type": "FakePool"}, enc(enc_dir)]}, GraphContext())
    assert (p.code, p.path_str) == ("graph.not-input", "modules[0]")
    assert p.hint == "move the FakeEncoder at modules[1] before the FakePool"
    (p,) = check_graph({"modules": [{"type": "FakePool"}]}, GraphContext())
    assert p.hint == "place a Transformer (or another input module) before the FakePool"


def test_missing_input():
    out = check_graph({"modules": [{"type": "FakeStatic", "dim": 8}, {"type": "FakePool"}]}, GraphContext())
    assert [(p.code, p.path_str, p.hint) for p in out] == [
        ("graph.missing-input", "modules[1]", "place a Transformer before the FakePool")]
    assert out[0].message == "FakePool reads 'token_embeddings', but nothing before it produces 'token_embeddings'"


def test_missing_input_named_by_a_parameter():
    out = check_graph({"modules": [{"type": "FakeStatic", "dim": 8}, proj(8, 4, src="sentence_embeding")]})
    assert [(p.code, p.path_str) for p in out] == [("graph.missing-input", "modules[1].src")]
    assert out[0].hint == "check src; features available here: sentence_embedding"


def test_router_routes_are_walked_as_input_paths(enc_dir):
    r = {"type": "Router", "sub_modules": {"q": [{"type": "FakeStatic", "dim": 16}],
                                           "d": [{"type": "FakePool"}, enc(enc_dir)]}}
    assert graph(r, proj(16, 4)) == [("graph.not-input", "modules[0].sub_modules.d[0]")]


def test_route_dims_that_differ_are_a_warning(enc_dir):
    """sentence-transformers only logs it (and a model it saved that way must import and build)."""
    r = {"type": "Router", "sub_modules": {"q": [{"type": "FakeStatic", "dim": 8}],
                                           "d": [enc(enc_dir), {"type": "FakePool"}]}}
    out = check_graph({"modules": [r]}, GraphContext())
    assert [(p.code, p.path_str, p.severity) for p in out] == [("graph.route-dims", "modules[0].sub_modules",
                                                                "warning")]
    assert out[0].found == "q → 8, d → 16"


def test_a_module_after_routes_that_differ_checks_each_route(enc_dir):
    r = {"type": "Router", "sub_modules": {"q": [{"type": "FakeStatic", "dim": 8}],
                                           "d": [enc(enc_dir), {"type": "FakePool"}]}}
    out = check_graph({"modules": [r, {"type": "Normalize"}, proj(16, 4)]}, GraphContext())
    assert [(p.code, p.path_str, p.severity) for p in out] == [
        ("graph.route-dims", "modules[0].sub_modules", "warning"), ("graph.dim-mismatch", "modules[2].in", "error")]
    assert out[1].message == "FakeProj expects 'sentence_embedding' of dimension 16, but route 'q' of the Router " \
                             "at modules[0] delivers 8"
    assert (out[1].found, out[1].hint) == ("q → 8, d → 16", "end route 'q' with a Dense projecting to 16")


def test_router_after_the_input_continues_the_flow(enc_dir):
    r = {"type": "Router", "sub_modules": {"a": [proj(16, 4)], "b": [proj(32, 4)]}}
    assert graph(enc(enc_dir), {"type": "FakePool"}, r) == [("graph.dim-mismatch", "modules[2].sub_modules.b[0].in")]


def test_dims_after_a_router_are_the_common_ones(enc_dir):
    r = {"type": "Router", "sub_modules": {"q": [{"type": "FakeStatic", "dim": 16}],
                                           "d": [enc(enc_dir), {"type": "FakePool"}]}}
    assert graph(r, proj(16, 4)) == []
    assert graph(r, proj(8, 4)) == [("graph.dim-mismatch", "modules[1].in")]


def test_feature_missing_on_some_routes(enc_dir):
    r = {"type": "Router", "sub_modules": {"a": [enc(enc_dir)], "b": [{"type": "FakeStatic", "dim": 16}]}}
    out = check_graph({"modules": [r, {"type": "FakePool"}]}, GraphContext())
    assert [(p.code, p.path_str) for p in out] == [("graph.missing-input", "modules[1]")]
    assert "route 'b' of the Router before it" in out[0].message


def test_refs_reuse_the_declared_node(enc_dir):
    r = {"type": "Router", "sub_modules": {"q": [{**enc(enc_dir), "id": "e"}, {"type": "FakePool"}],
                                           "d": [{"ref": "e"}, {"type": "FakePool"}]}}
    ctx = GraphContext()
    assert graph(r, proj(16, 4), ctx=ctx) == []
    assert ctx.read == [str(enc_dir / "config.json")]  # cached: read once


def test_unknown_things_do_not_cascade(enc_dir):
    assert graph({"type": "Nope"}, {"type": "FakePool"}, proj(3, 4)) == []
    assert graph(enc(enc_dir), {"ref": "missing"}, proj(3, 4)) == []
    assert graph(enc(enc_dir), "junk", proj(3, 4)) == []
    assert graph({"type": "Router", "load_from": "/saved"}, proj(3, 4)) == []


def test_describe_failures(enc_dir):
    out = check_graph({"modules": [enc(enc_dir), {"type": "FakeBroken"}, proj(3, 4)]}, GraphContext())
    assert [(p.code, p.path_str) for p in out] == [("graph.describe-failed", "modules[1]")]
    skip = {("modules", 1, "size")}
    assert check_graph({"modules": [enc(enc_dir), {"type": "FakeBroken"}]}, GraphContext(), skip) == []
    out = check_graph({"modules": [enc(enc_dir), {"type": "FakeBroken", "config_error": True}]}, GraphContext())
    assert [(p.code, p.path_str) for p in out] == [("check.fake", "modules[1].size")]


def test_no_sentence_embedding_is_an_error(enc_dir):
    (p,) = check_graph({"modules": [enc(enc_dir)]}, GraphContext())
    assert (p.code, p.severity, p.path_str) == ("graph.no-output", "error", "modules")


def test_unknown_dims_are_not_errors(tmp_path):
    assert graph(enc(tmp_path / "nothing-here"), {"type": "FakePool"}, proj(3, 4)) == []


def test_real_pooling_and_dense_describe(enc_dir):
    """The real Pooling/Dense/Normalize describe() behind a fake encoder."""
    out = check_graph({"modules": [enc(enc_dir), {"type": "Pooling", "pooling_mode": ["cls", "mean"]},
                                   {"type": "Dense", "in_features": 16, "out_features": 4}, {"type": "Normalize"}]},
                      GraphContext())
    assert [(p.code, p.path_str, p.expected) for p in out] == [
        ("graph.dim-mismatch", "modules[2].in_features", "32 (sentence_embedding of the Pooling at modules[1])")]
    out = check_graph({"modules": [enc(enc_dir), {"type": "Pooling", "embedding_dimension": 8}]}, GraphContext())
    assert [(p.code, p.path_str) for p in out] == [("graph.dim-mismatch", "modules[1].embedding_dimension")]


class TestGraphContext:
    def test_reads_config_json_and_caches(self, enc_dir):
        ctx = GraphContext()
        assert ctx.hf_config(str(enc_dir)) == {"hidden_size": 16}
        assert ctx.hf_config(str(enc_dir)) == {"hidden_size": 16}
        assert ctx.read == [str(enc_dir / "config.json")]

    def test_relative_to_base_dir(self, enc_dir):
        assert GraphContext(base_dir=enc_dir.parent).hf_config("enc") == {"hidden_size": 16}

    def test_missing_and_malformed(self, tmp_path):
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "config.json").write_text("{not json")
        ctx = GraphContext()
        assert ctx.hf_config(str(tmp_path / "bad")) is None
        assert ctx.hf_config("org/not-in-cache-xyz") is None
        assert ctx.hf_config("") is None
        assert ctx.missing == {str(tmp_path / "bad"), "org/not-in-cache-xyz"}

    def test_bundled_name(self, minilm_dir):
        assert GraphContext().hf_config("all-MiniLM-L6-v2")["hidden_size"] == 384


# ------------------------------------------------------------------------------- load_from: saved parameters
def _dense_folder(path, n_in, n_out):
    """A saved Dense folder, written by hand: config.json + model.safetensors (the weights are never read)."""
    import torch
    from safetensors.torch import save_file

    path.mkdir()
    (path / "config.json").write_text(json.dumps({"in_features": n_in, "out_features": n_out, "bias": True,
                                                  "activation_function": "torch.nn.modules.activation.Tanh"}))
    save_file({"linear.weight": torch.zeros(n_out, n_in), "linear.bias": torch.zeros(n_out)},
              str(path / "model.safetensors"))
    return path


def test_loaded_dense_takes_its_dims_from_the_saved_config(enc_dir, tmp_path):
    dense = _dense_folder(tmp_path / "2_Dense", 16, 4)
    (p,) = check_graph({"modules": [enc(enc_dir), {"type": "Pooling", "pooling_mode": ["mean", "max"]},
                                    {"type": "Dense", "load_from": str(dense)}]}, GraphContext())
    assert (p.code, p.path_str, p.expected) == ("graph.dim-mismatch", "modules[2].load_from", "16")
    assert p.found == "32 (sentence_embedding of the Pooling at modules[1])"
    assert p.message == f"Dense loaded from '{dense}' expects 'sentence_embedding' of dimension 16 (in_features " \
                        "of the saved module), but 32 arrives"
    problems, trace = walk_graph({"modules": [enc(enc_dir), {"type": "Pooling"}, {"type": "Dense", "load_from":
                                                                                   str(dense)}]}, GraphContext())
    assert problems == [] and trace[-1].produced == {"sentence_embedding": 4}


def test_router_route_ending_in_a_loaded_dense(enc_dir, tmp_path):
    dense = _dense_folder(tmp_path / "d", 16, 4)
    r = {"type": "Router", "sub_modules": {"q": [enc(enc_dir), {"type": "Pooling"}],
                                           "d": [enc(enc_dir), {"type": "Pooling"}, {"type": "Dense",
                                                                                      "load_from": str(dense)}]}}
    (p,) = check_graph({"modules": [r]}, GraphContext())
    assert (p.code, p.found) == ("graph.route-dims", "q → 16, d → 4")


def test_explicit_params_win_but_not_against_the_weights(enc_dir, tmp_path):
    dense = _dense_folder(tmp_path / "d", 16, 4)
    ok = {"type": "Dense", "load_from": str(dense), "activation_function": "torch.nn.Identity"}
    assert graph(enc(enc_dir), {"type": "Pooling"}, ok) == []
    out = check_graph({"modules": [enc(enc_dir), {"type": "Pooling"}, {**ok, "out_features": 3}]}, GraphContext())
    assert [(p.code, p.path_str, p.expected, p.found) for p in out] == [
        ("graph.load-from", "modules[2].out_features", "4", "3")]
    assert f"{dense / 'model.safetensors'}: linear.weight [4, 16]" in out[0].message


def test_loaded_static_embedding_dim_comes_from_the_tensor_shape(tmp_path):
    import torch
    from safetensors.torch import save_file

    (tmp_path / "static").mkdir()
    save_file({"embedding.weight": torch.zeros(7, 12)}, str(tmp_path / "static" / "model.safetensors"))
    out = check_graph({"modules": [{"type": "StaticEmbedding", "load_from": str(tmp_path / "static")},
                                   {"type": "Dense", "in_features": 100, "out_features": 4}]}, GraphContext())
    assert [(p.code, p.path_str, p.expected) for p in out] == [
        ("graph.dim-mismatch", "modules[1].in_features",
         "12 (sentence_embedding of the StaticEmbedding at modules[0])")]


def test_loaded_transformer_reads_the_model_folder(tmp_path):
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 24,
                                                   "max_position_embeddings": 64}))
    (saved / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32}))
    out = check_graph({"modules": [{"type": "Transformer", "load_from": str(saved)},
                                   {"type": "Pooling", "embedding_dimension": 100}]}, GraphContext())
    assert [(p.code, p.path_str, p.expected) for p in out] == [
        ("graph.dim-mismatch", "modules[1].embedding_dimension",
         f"24 (read from the config.json of '{saved}' by the Transformer at modules[0])")]
    (saved / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    out = check_graph({"modules": [{"type": "Transformer", "load_from": str(saved)}, {"type": "Pooling"}]},
                      GraphContext())
    assert [(p.code, p.path_str, p.found) for p in out] == [("graph.max-seq-length", "modules[0].load_from", "128")]


def test_unreadable_saved_config_is_reported_once(enc_dir, tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    node = {"type": "Pooling", "load_from": str(tmp_path / "bad")}
    out = check_graph({"modules": [enc(enc_dir), node]}, GraphContext())
    assert [(p.code, p.path_str) for p in out] == [("graph.load-from", "modules[1].load_from")]
    assert check_graph({"modules": [enc(enc_dir), node]}, GraphContext(), {("modules", 1, "load_from")}) == []


# ------------------------------------------------------------------------------- max_seq_length
@pytest.mark.parametrize("cfg, msl, limit", [
    ({"model_type": "bert", "max_position_embeddings": 64}, 65, 64),
    ({"model_type": "bert", "max_position_embeddings": 64}, 64, None),
    ({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}, 513, 512),
    ({"model_type": "bert", "max_position_embeddings": 64, "position_embedding_type": "relative_key"}, 999, None),
    ({"model_type": "clip", "text_config": {"max_position_embeddings": 77}}, 78, 77),
])
def test_max_seq_length_must_fit_the_position_table(tmp_path, cfg, msl, limit):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({"hidden_size": 8, **cfg}))
    node = {"type": "Transformer", "model_name_or_path": str(tmp_path / "m"), "max_seq_length": msl}
    out = [p for p in check_graph({"modules": [node]}, GraphContext()) if p.code != "graph.no-output"]
    if limit is None:
        assert out == []
    else:
        assert [(p.code, p.path_str, p.severity) for p in out] == [
            ("graph.max-seq-length", "modules[0].max_seq_length", "error")]
        assert out[0].expected == f"at most {limit} (max_position_embeddings in its config.json)"
