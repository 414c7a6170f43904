"""build(): definition → modules → Pipeline (refs, bind_upstream, load_from, overrides, YAML, errors),
and encode parity of dict-built tiny-BERT pipelines with sentence-transformers (the oracle)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from stpipe import registry
from stpipe.builder import build
from stpipe.errors import ConfigError
from stpipe.modules.module import InputModule


class ToyEnc(InputModule):
    """A registered fake input module: token embeddings from a seeded table (words hashed to ids)."""

    def __init__(self, dim: int = 4, model_kwargs: dict | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.model_kwargs = model_kwargs
        self.emb = torch.nn.Embedding(50, dim)
        self.emb.weight.data = torch.randn(50, dim, generator=torch.Generator().manual_seed(dim))

    def preprocess(self, inputs, prompt=None, **kwargs):
        rows = [[sum(map(ord, w)) % 50 for w in ((prompt or "") + x).split()] or [0] for x in inputs]
        width = max(map(len, rows))
        return {"input_ids": torch.tensor([r + [0] * (width - len(r)) for r in rows]),
                "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])}

    def forward(self, features, **kwargs):
        features["token_embeddings"] = self.emb(features["input_ids"])
        return features

    def get_embedding_dimension(self):
        return self.dim

    def save(self, output_path, *args, safe_serialization=True, **kwargs):
        self.save_torch_weights(output_path, safe_serialization)


@pytest.fixture(autouse=True)
def toy_registered():
    registry.register(ToyEnc)
    yield
    registry.unregister("ToyEnc")


def codes(exc: ConfigError) -> list[str]:
    return [p.code for p in exc.problems]


def test_ref_shares_the_instance_and_bind_upstream_fills_dimensions():
    pipe = build({"modules": [{"type": "Router", "default_route": "document", "sub_modules": {
        "query": [{"type": "ToyEnc", "id": "enc", "dim": 6}, {"type": "Pooling"}],
        "document": [{"ref": "enc"}, {"type": "Pooling", "pooling_mode": ["mean", "max"]}]}}]},
        validate=False, device="cpu")
    router = pipe[0]
    assert router.sub_modules["query"][0] is router.sub_modules["document"][0]
    assert router.sub_modules["query"][1].embedding_dimension == 6  # bound from ToyEnc
    assert router.sub_modules["document"][1].get_embedding_dimension() == 12
    assert pipe.encode_query(["a b"]).shape == (1, 6) and pipe.encode_document(["a b"]).shape == (1, 12)


def test_top_level_bind_upstream_and_pipeline_settings():
    definition = {"name": "toy", "similarity_fn_name": "dot", "prompts": {"query": "q: "}, "truncate_dim": 3,
                  "default_prompt_name": "query",
                  "modules": [{"type": "ToyEnc", "dim": 5}, {"type": "Pooling", "pooling_mode": "cls"},
                              {"type": "Normalize"}]}
    pipe = build(definition, validate=False, device="cpu")
    assert pipe[1].embedding_dimension == 5
    assert (pipe.name, pipe.similarity_fn_name, pipe.truncate_dim) == ("toy", "dot", 3)
    assert pipe.prompts == {"query": "q: ", "document": ""} and pipe.default_prompt_name == "query"
    assert pipe.definition == definition and pipe.definition is not definition
    assert pipe.get_embedding_dimension() == 3


def test_load_from_uses_saved_weights_and_node_params_win(tmp_path):
    from stpipe.modules.dense import Dense

    dense = Dense(4, 3, activation_function=None)
    dense.save(str(tmp_path / "2_Dense"))
    pipe = build({"modules": [{"type": "ToyEnc"}, {"type": "Pooling"},
                              {"type": "Dense", "load_from": "2_Dense", "module_output_name": "proj"}]},
                 validate=False, device="cpu", base_dir=tmp_path)
    loaded = pipe[2]
    torch.testing.assert_close(loaded.linear.weight, dense.linear.weight)
    assert loaded.module_output_name == "proj" and loaded.out_features == 3
    out = pipe.encode(["a b c"], output_value=None)[0]
    with torch.inference_mode():
        torch.testing.assert_close(out["proj"], dense.linear(out["sentence_embedding"]))


def test_constructor_errors_become_config_errors_with_paths(tmp_path):
    with pytest.raises(ConfigError) as e:
        build({"modules": [{"type": "ToyEnc"}, {"type": "Pooling", "pooling_mod": "mean"}]}, validate=False)
    p = e.value.problems[0]
    assert p.code == "build.init" and p.path_str == "modules[1]" and "pooling_mod" in p.message
    assert "pooling_mode" in p.hint  # the accepted parameters are listed
    with pytest.raises(ConfigError) as e:
        build({"modules": [{"type": "ToyEnc"}, {"type": "Pooling"}, {"type": "Dense", "in_features": -1,
                                                                      "out_features": 2}]}, validate=False)
    assert codes(e.value) == ["build.init"] and e.value.problems[0].path_str == "modules[2]"
    with pytest.raises(ConfigError) as e:
        build({"modules": [{"type": "ToyEnc"}, {"type": "Dense", "load_from": str(tmp_path / "nope")}]},
              validate=False)
    assert codes(e.value) == ["build.load"] and e.value.problems[0].path_str == "modules[1].load_from"
    assert "nope" in e.value.problems[0].message
    with pytest.raises(ConfigError) as e:
        build({"modules": [{"type": "Router", "sub_modules": {"q": [{"ref": "enc"}]}}]}, validate=False)
    assert codes(e.value) == ["build.unknown-ref"]
    assert e.value.problems[0].path_str == "modules[0].sub_modules.q[0].ref"
    with pytest.raises(ConfigError) as e:
        build({"modules": [{"type": "Poolng"}]}, validate=False)
    assert codes(e.value) == ["registry.unknown-type"] and "did you mean 'Pooling'?" in e.value.problems[0].hint
    with pytest.raises(ConfigError) as e:
        build({"default_prompt_name": "nope", "modules": [{"type": "ToyEnc"}]}, validate=False)
    assert codes(e.value) == ["build.pipeline.default_prompt_name"]
    with pytest.raises(ConfigError) as e:
        build({"modules": []}, validate=False)
    assert codes(e.value) == ["build.no-modules"]


def test_overrides():
    base = {"modules": [{"type": "ToyEnc"}, {"type": "Pooling", "pooling_mode": "mean"}], "truncate_dim": 2}
    pipe = build(base, overrides=["modules.1.pooling_mode=max", "+modules.1.include_prompt=false", "~truncate_dim",
                                  "+modules.0.dim=7"], validate=False, device="cpu")
    assert pipe[1].pooling_mode == "max" and pipe[1].include_prompt is False and pipe.truncate_dim is None
    assert pipe[0].dim == 7 and pipe[1].embedding_dimension == 7
    assert base["modules"][1]["pooling_mode"] == "mean"  # the caller's dict is untouched
    with pytest.raises(ConfigError) as e:
        build(base, overrides=["modules.1.pooling_mod=max"], validate=False)
    p = e.value.problems[0]
    assert p.code == "override.unknown-key" and p.hint.startswith("did you mean 'pooling_mode'?")
    assert "+modules.1.pooling_mod=" in p.hint and p.source == "override `modules.1.pooling_mod=max`"
    assert p.source == "override `modules.1.pooling_mod=max`"
    with pytest.raises(ConfigError) as e:
        build(base, overrides=["modules.1.pooling_mode"], validate=False)
    assert codes(e.value) == ["override.syntax"]
    with pytest.raises(ConfigError) as e:  # the constructor's error points at the override that caused it
        build(base, overrides=["modules.1.pooling_mode=meen"], validate=False)
    assert e.value.problems[0].path_str == "modules[1]"


def test_yaml_file_relative_paths_and_sources(tmp_path):
    from stpipe.modules.dense import Dense

    (tmp_path / "weights").mkdir()
    Dense(4, 2).save(str(tmp_path / "weights" / "dense"))
    f = tmp_path / "model.yaml"
    f.write_text(textwrap.dedent("""\
        name: toy
        modules:
          - type: ToyEnc
          - type: Pooling
          - type: Dense
            load_from: weights/dense
        """))
    pipe = build(f, validate=False, device="cpu")
    assert pipe[2].out_features == 2
    assert pipe.definition["modules"][2]["load_from"] == "weights/dense"  # unresolved, for export
    f.write_text("modules:\n  - type: ToyEnc\n  - type: Pooling\n    pooling_mode: meen\n")
    with pytest.raises(ConfigError) as e:
        build(f, validate=False)
    assert e.value.problems[0].source.endswith("model.yaml:3:5")
    with pytest.raises(ConfigError) as e:
        build(tmp_path / "missing.yaml")
    assert codes(e.value) == ["yaml.not-found"]


def test_trust_remote_code_reaches_hf_kwargs():
    pipe = build({"trust_remote_code": True, "modules": [{"type": "ToyEnc", "model_kwargs": {"x": 1}}]},
                 validate=False, device="cpu")
    assert pipe[0].model_kwargs == {"trust_remote_code": True, "x": 1}
    pipe = build({"modules": [{"type": "ToyEnc"}]}, validate=False, device="cpu")
    assert pipe[0].model_kwargs is None


def test_saved_directory_is_loaded(tmp_path):
    pipe = build({"modules": [{"type": "ToyEnc"}, {"type": "Pooling"}]}, validate=False, device="cpu")
    pipe.save(tmp_path / "m")
    again = build(tmp_path / "m", device="cpu")
    np.testing.assert_allclose(again.encode(["a b", "c"]), pipe.encode(["a b", "c"]), atol=1e-6)
    # one override policy with the CLI (`stpipe encode DIR model.truncate_dim=2`): overrides apply to a saved
    # model's definition (issue 18; they were refused before)
    short = build(tmp_path / "m", overrides=["truncate_dim=2"], device="cpu")
    np.testing.assert_allclose(short.encode(["a b", "c"]), pipe.encode(["a b", "c"])[:, :2], atol=1e-6)
    assert build(tmp_path / "m", overrides=["modules.1.pooling_mode=max"], device="cpu").encode(
        ["a b"]).shape == pipe.encode(["a b"]).shape
    with pytest.raises(ConfigError):  # a bad override is still a ConfigError
        build(tmp_path / "m", overrides=["modules.9.pooling_mode=max"], device="cpu")


def test_yaml_with_a_relative_transformer_path_builds_validated(tiny_bert_dir):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    f = tiny_bert_dir.parent / "tiny.yaml"
    f.write_text(f"modules:\n  - type: Transformer\n    model_name_or_path: {tiny_bert_dir.name}\n"
                 "  - type: Pooling\n    pooling_mode: max\n")
    pipe = build(f, device="cpu")  # validated; the path resolves against the YAML file's directory
    assert pipe.definition["modules"][0]["model_name_or_path"] == tiny_bert_dir.name
    assert pipe[1].embedding_dimension == 32
    st = SentenceTransformer(modules=[Transformer(str(tiny_bert_dir)), Pooling(32, "max")], device="cpu")
    sents = ["the cat sat", "a dog runs in the park now"]
    np.testing.assert_allclose(pipe.encode(sents), st.encode(sents), atol=1e-5)


def test_hugging_face_load_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError) as e:
        build({"modules": [{"type": "Transformer", "model_name_or_path": str(tmp_path / "none")},
                           {"type": "Pooling"}]}, validate=False)
    p = e.value.problems[0]
    assert p.code.startswith("build.") and p.path_str == "modules[0]" and "none" in p.message


def test_interpolations_tensors_and_unknown_names(tmp_path):
    pipe = build({"d": 3, "modules": [{"type": "ToyEnc", "dim": "${d}"}, {"type": "Pooling"}]},
                 validate=False, device="cpu")
    assert pipe[0].dim == 3
    weight = torch.arange(12.0).reshape(3, 4)
    pipe = build({"modules": [{"type": "ToyEnc"}, {"type": "Pooling"},
                              {"type": "Dense", "in_features": 4, "out_features": 3, "init_weight": weight}]},
                 validate=False, device="cpu")
    torch.testing.assert_close(pipe[2].linear.weight.detach(), weight)
    from stpipe.errors import LoadError

    with pytest.raises(LoadError, match="no-such-model: model directory not found"):
        build(str(tmp_path / "no-such-model"))
    with pytest.raises(LoadError, match="'someone/no-such-model' is not in the Hugging Face cache"):
        build("someone/no-such-model")


def test_route_modules_are_bound_to_what_precedes_the_router(tiny_bert_dir, tmp_path):
    """A Router after a Transformer: each route's Pooling learns its dimension from the Transformer, so the saved
    model loads in sentence-transformers (which needs embedding_dimension) and agrees."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    pipe = build({"modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                              {"type": "Router", "sub_modules": {"query": [{"type": "Pooling", "pooling_mode": "cls"}],
                                                                 "document": [{"type": "Pooling"}]}}]}, device="cpu")
    assert pipe[1].get_embedding_dimension() == 32
    pipe.save(str(tmp_path / "m"))
    st = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    for task in ("query", "document"):
        assert np.abs(st.encode(["a cat"], task=task) - pipe.encode(["a cat"], task=task)).max() <= 1e-5


@pytest.mark.parametrize(("key", "value"), [("model_type", "X"), ("similarity_fn_name", "cosinus"),
                                            ("default_prompt_name", "q"), ("truncate_dim", 0), ("prompts", [1]),
                                            ("max_active_dims", 0)])
def test_pipeline_errors_name_the_definition_key(key, value):
    """The Pipeline names the argument it refuses (ArgumentError.key); no guessing from the message text."""
    with pytest.raises(ConfigError) as info:
        build({"modules": [{"type": "Normalize"}], key: value}, validate=False)
    assert (info.value.problems[0].code, info.value.problems[0].path) == (f"build.pipeline.{key}", (key,))


def test_argument_error_carries_its_key():
    from stpipe.errors import ArgumentError
    from stpipe.modules.normalize import Normalize
    from stpipe.pipeline import Pipeline

    with pytest.raises(ArgumentError) as info:
        Pipeline([Normalize()], similarity_fn_name="cosinus")
    assert info.value.key == "similarity_fn_name" and isinstance(info.value, ValueError)


def test_a_bug_in_a_constructor_is_not_reported_as_bad_input():
    """KeyError / AttributeError inside a constructor are bugs: they surface, not as a build.init problem."""
    class BuggyKeyError(ToyEnc):
        def __init__(self) -> None:
            raise KeyError("internal table")

    registry.register(BuggyKeyError)
    try:
        with pytest.raises(KeyError):
            build({"modules": [{"type": "BuggyKeyError"}]}, validate=False)
    finally:
        registry.unregister("BuggyKeyError")


def test_deep_definitions_and_generators_are_config_errors():
    node: list = [{"type": "Normalize"}]
    for _ in range(300):
        node = [{"type": "Router", "sub_modules": {"q": node}, "default_route": "q"}]
    with pytest.raises(ConfigError, match="nested deeper than 100 levels") as info:
        build({"modules": node}, validate=False)
    assert info.value.problems[0].code == "schema.depth"
    with pytest.raises(ConfigError, match="expected a list, found a generator"):
        build({"modules": (n for n in [{"type": "Normalize"}])})
