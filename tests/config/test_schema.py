"""Stage 1: JSON Schemas — one problem per mistake, with the exact path, code and "did you mean"."""

from __future__ import annotations

import inspect
import json

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from stpipe import registry
from stpipe.config.schema import NODE_KEY_SCHEMAS, combined_schema, validate_schema
from stpipe.modules.module import Module
from stpipe.resources import schemas_dir

BUILTINS = ["Transformer", "Pooling", "Dense", "Normalize", "Router", "StaticEmbedding", "SparseStaticEmbedding",
            "SpladePooling"]

GOOD = {
    "Transformer": {"type": "Transformer", "model_name_or_path": "m", "transformer_task": "fill-mask",
                    "model_kwargs": {"torch_dtype": "bfloat16"}, "processor_kwargs": {"model_max_length": 64},
                    "config_kwargs": {"hidden_dropout_prob": 0.0}, "processing_kwargs": {"text": {"padding": True}},
                    "backend": "torch", "modality_config": {"image+text": {"method": "forward",
                                                                           "method_output_name": "x"}},
                    "module_output_name": "token_embeddings", "unpad_inputs": None, "max_seq_length": 128,
                    "do_lower_case": False, "tokenizer_name_or_path": None, "query_length": 8,
                    "document_length": 16},
    "Pooling": {"type": "Pooling", "pooling_mode": ["cls", "mean"], "include_prompt": False,
                "embedding_dimension": 384},
    "Dense": {"type": "Dense", "in_features": 4, "out_features": 2, "bias": True, "activation_function": None,
              "init_weight": [[1, 0, 0, 0], [0, 1, 0, 0]], "init_bias": [0, 0], "module_input_name": "x",
              "module_output_name": "y", "use_residual": False},
    "Normalize": {"type": "Normalize", "module_input_name": "sentence_embedding", "module_output_name": None},
    "Router": {"type": "Router", "id": "r", "default_route": "q", "allow_empty_key": False,
               "sub_modules": {"q": [{"type": "Normalize"}], "d": [{"ref": "x"}]},
               "route_mappings": [{"task": "query", "modality": ["text", "image"], "route": "q"},
                                  {"modality": None, "route": "d"}, {"route": "d"}]},
    "StaticEmbedding": {"type": "StaticEmbedding", "tokenizer": "tok", "embedding_dim": 8,
                        "embedding_weights": None},
    "SparseStaticEmbedding": {"type": "SparseStaticEmbedding", "tokenizer": "tok", "weight": [1.0, 0.5],
                              "frozen": True, "path": None},
    "SpladePooling": {"type": "SpladePooling", "pooling_strategy": "sum", "activation_function": "log1p_relu",
                      "embedding_dimension": None, "chunk_size": 16},
}


def probs(*nodes, **top):
    return validate_schema({"modules": list(nodes), **top})


def one(*nodes, **top):
    out = probs(*nodes, **top)
    assert len(out) == 1, [p.render() for p in out]
    return out[0]


@pytest.mark.parametrize("name", BUILTINS)
def test_good_node_of_every_type(name):
    assert probs(GOOD[name]) == []
    assert probs({"type": name, "load_from": "/saved/module"}) == []  # load_from: required params come from disk


def test_good_skeleton():
    top = {"name": "x", "model_type": "SparseEncoder", "similarity_fn_name": "dot", "prompts": {"query": "q: "},
           "default_prompt_name": "query", "truncate_dim": 64, "trust_remote_code": False}
    assert probs(GOOD["Pooling"], **top) == []


@pytest.mark.parametrize("name", BUILTINS)
def test_every_schema_allows_the_node_keys_and_rejects_unknown_keys(name):
    schema = json.loads((schemas_dir() / "modules" / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    for key, sub in NODE_KEY_SCHEMAS.items():
        assert {k: v for k, v in schema["properties"][key].items() if k != "description"} == sub


ORACLE_PARAMS_NOT_IN_YAML = {"query_expansion", "kwargs", "self"}  # multi-vector only; **kwargs


@pytest.mark.parametrize("name, oracle", [
    ("Transformer", "sentence_transformers.base.modules:Transformer"),
    ("Pooling", "sentence_transformers.sentence_transformer.modules:Pooling"),
    ("Dense", "sentence_transformers.base.modules:Dense"),
    ("Normalize", "sentence_transformers.base.modules:Normalize"),
    ("Router", "sentence_transformers.base.modules:Router"),
    ("StaticEmbedding", "sentence_transformers.sentence_transformer.modules:StaticEmbedding"),
    ("SparseStaticEmbedding", "sentence_transformers.sparse_encoder.modules:SparseStaticEmbedding"),
    ("SpladePooling", "sentence_transformers.sparse_encoder.modules:SpladePooling"),
])
def test_schema_covers_the_oracle_constructor(name, oracle):
    import importlib

    mod, _, cls = oracle.partition(":")
    params = set(inspect.signature(getattr(importlib.import_module(mod), cls).__init__).parameters)
    schema = json.loads((schemas_dir() / "modules" / f"{name}.schema.json").read_text())
    assert params - ORACLE_PARAMS_NOT_IN_YAML <= set(schema["properties"])


# ------------------------------------------------------------------------------- one problem per mistake
def test_backend_hint():
    p = one({"type": "Transformer", "model_name_or_path": "m", "backend": "onxx"})
    assert p.code == "schema.enum" and "did you mean 'onnx'?" in p.hint and "torch, onnx or openvino" in p.hint


def test_nested_kwargs_keys():
    p = one({"type": "Transformer", "model_name_or_path": "m", "processing_kwargs": {"txt": {}}})
    assert (p.code, p.path_str, p.hint) == ("schema.unknown-key", "modules[0].processing_kwargs.txt",
                                            "did you mean 'text'?")
    p = one({"type": "Transformer", "model_name_or_path": "m", "model_kwargs": {"torch_dtyp": "float16"}})
    assert (p.path_str, p.hint) == ("modules[0].model_kwargs.torch_dtyp", "did you mean 'torch_dtype'?")
    p = one({"type": "Transformer", "model_name_or_path": "m", "modality_config": {"text+img": {
        "method": "forward", "method_output_name": None}}, "module_output_name": "token_embeddings"})
    assert (p.code, p.path_str) == ("schema.key-name", "modules[0].modality_config.text+img")


def test_top_level_keys():
    out = validate_schema({"modles": [], "similarity_fn_name": "cosin", "truncate_dim": -1})
    assert [(p.code, p.path_str, p.hint) for p in out] == [
        ("schema.unknown-key", "modles", "did you mean 'modules'?"),
        ("schema.enum", "similarity_fn_name", "did you mean 'cosine'?"),
        ("schema.range", "truncate_dim", None)]


@pytest.mark.parametrize("value", [None, [1, 2], "x", 3])
def test_definition_must_be_a_mapping(value):
    assert [(p.code, p.path) for p in validate_schema(value)] == [("schema.type", ())]


def test_nodes_malformed():
    out = probs(3, {"ref": "a", "x": 1}, {"id": "x"}, {"type": 5}, {"type": "Poolng"})
    assert [(p.code, p.path_str) for p in out] == [
        ("schema.type", "modules[0]"), ("schema.unknown-key", "modules[1].x"), ("schema.required", "modules[2].type"),
        ("schema.type", "modules[3].type"), ("registry.unknown-type", "modules[4].type")]
    assert out[-1].hint == "did you mean 'Pooling'?"


def test_router_children_are_checked_with_full_paths():
    router = {"type": "Router", "sub_modules": {
        "q": {"type": "Dense"}, "../x": [],
        "d": [{"type": "Normalize"}, {"type": "Dense", "in_features": 1, "out_features": 2, "bais": True}]},
        "route_mappings": [{"task": "q", "modalty": "text", "route": "q"}, {"modality": "imag", "route": "d"},
                           {"modality": ["text", "imag"], "route": "d"}, {"route": 5}]}
    out = probs(router)
    assert [(p.code, p.path_str, p.hint) for p in out] == [
        ("schema.type", "modules[0].sub_modules.q",
         "each route is a list of module nodes, e.g. query: [{type: Transformer, ...}]"),
        ("schema.key-name", "modules[0].sub_modules.../x",
         "route names become folder names when saved: no '/' or '\\', not '.' or '..'"),
        ("schema.unknown-key", "modules[0].sub_modules.d[1].bais", "did you mean 'bias'?"),
        ("schema.unknown-key", "modules[0].route_mappings[0].modalty", "did you mean 'modality'?"),
        ("schema.enum", "modules[0].route_mappings[1].modality", "did you mean 'image'?"),
        ("schema.enum", "modules[0].route_mappings[2].modality[1]", "did you mean 'image'?"),
        ("schema.type", "modules[0].route_mappings[3].route", None)]


def test_st_class_path_aliases_use_the_same_schema():
    p = one({"type": "sentence_transformers.models.Pooling", "pooling_mode": "meen"})
    assert p.code == "schema.enum"


# ------------------------------------------------------------------------------- plugins
class _Plain(Module):
    def forward(self, features, **kw):
        return features

    def save(self, output_path, *args, **kwargs):
        pass


class _WithSchema(_Plain):
    schema = {"properties": {"scale": {"type": "number"}}, "additionalProperties": False}


@pytest.fixture
def plugins():
    registry.register(_Plain, name="PlainPlugin")
    registry.register(_WithSchema, name="SchemaPlugin")
    yield
    registry.unregister("PlainPlugin")
    registry.unregister("SchemaPlugin")


def test_plugin_without_schema_accepts_anything(plugins):
    """A constructor (*args, **kwargs) says nothing about its parameters."""
    assert probs({"type": "PlainPlugin", "whatever": [1, {"x": None}]}) == []


def test_plugin_schema_attribute(plugins):
    assert probs({"type": "SchemaPlugin", "scale": 2.0, "id": "s"}) == []
    p = one({"type": "SchemaPlugin", "scal": 2.0})
    assert (p.code, p.path_str, p.hint) == ("schema.unknown-key", "modules[0].scal", "did you mean 'scale'?")
    assert "SchemaPlugin" in json.dumps(combined_schema()["$defs"])


# ------------------------------------------------------------------------------- editors' schemas
def _errors(schema, instance, registry_=None):
    v = Draft202012Validator(schema, registry=registry_) if registry_ else Draft202012Validator(schema)
    return sorted("/".join(map(str, e.absolute_path)) for e in v.iter_errors(instance))


BAD = {"modules": [{"type": "Router", "sub_modules": {"q": [{"type": "Pooling", "pooling_mode": "meen"}]}},
                   {"type": "Dense", "in_features": 3, "out_features": 2, "bais": False}, {"ref": "x", "y": 1}]}
GOOD_DEF = {"name": "x", "modules": [GOOD["Transformer"], GOOD["Pooling"], GOOD["Router"], GOOD["Dense"]]}


def test_combined_schema_is_self_contained_and_selects_by_type():
    schema = combined_schema()
    Draft202012Validator.check_schema(schema)
    assert _errors(schema, GOOD_DEF) == []
    assert _errors(schema, BAD) == ["modules/0/sub_modules/q/0/pooling_mode", "modules/1", "modules/2"]
    alias = {"modules": [{"type": "sentence_transformers.models.Dense", "in_features": 1}]}
    assert _errors(schema, alias) == ["modules/0"]  # out_features missing: the alias selects Dense's schema


def test_combined_schema_names_the_registered_types():
    """Editors flag a misspelt type: `type` is an enum of the registered names (and their aliases)."""
    schema = combined_schema()
    assert _errors(schema, {"modules": [{"type": "Transfomer", "model_name_or_path": "m"}]}) == ["modules/0/type"]
    assert _errors(schema, {"modules": [{"type": "sentence_transformers.models.Normalize"}]}) == []


def test_published_pipeline_schema_works_with_relative_refs():
    """As an editor sees it: pipeline.schema.json resolving modules/<Name>.schema.json next to it."""
    root = schemas_dir()
    resources = {f"file:///schemas/{p.relative_to(root).as_posix()}": Resource.from_contents(json.loads(p.read_text()))
                 for p in root.rglob("*.schema.json")}
    reg = Registry().with_resources(resources.items())
    schema = {"$ref": "file:///schemas/pipeline.schema.json"}
    assert _errors(schema, GOOD_DEF, reg) == []
    assert _errors(schema, BAD, reg) == ["modules/0/sub_modules/q/0/pooling_mode", "modules/1", "modules/2"]


def test_transformer_tasks_are_the_ones_the_transformer_builds():
    from stpipe.modules.transformer_setup import TASKS

    schema = json.loads((schemas_dir() / "modules" / "Transformer.schema.json").read_text())
    assert sorted(schema["properties"]["transformer_task"]["enum"]) == sorted(TASKS)
    p = one({"type": "Transformer", "model_name_or_path": "m", "transformer_task": "retrieval"})
    assert p.code == "schema.enum" and "retrieval is not supported yet" in p.hint


def test_processing_kwargs_top_level_keys_did_you_mean():
    p = one({"type": "Transformer", "model_name_or_path": "m", "processing_kwargs": {"txt": {"max_length": 4}}})
    assert (p.code, p.path_str, p.hint) == ("schema.unknown-key", "modules[0].processing_kwargs.txt",
                                            "did you mean 'text'?")


@pytest.mark.parametrize("modality, problem", [
    ("image+text", None), (["text"], None), ("imag", ("schema.enum", "did you mean 'image'?")),
    ("image text", ("schema.enum", "did you mean 'image'?")),
])
def test_route_mapping_modality_forms(modality, problem):
    node = {"type": "Router", "sub_modules": {"a": [{"type": "Normalize"}]},
            "route_mappings": [{"modality": modality, "route": "a"}]}
    out = [(p.code, p.hint) for p in probs(node)]
    assert out == ([problem] if problem else [])


def test_max_active_dims_is_a_pipeline_key():
    assert probs({"type": "Normalize"}, model_type="SparseEncoder", max_active_dims=64) == []
    assert probs({"type": "Normalize"}, max_active_dims=None) == []
    p = one({"type": "Normalize"}, model_type="SparseEncoder", max_active_dims=0)
    assert (p.code, p.path_str) == ("schema.range", "max_active_dims")
