"""Stage 2: semantic checks, case by case (code, exact path, hint)."""

from __future__ import annotations

import pytest

from stpipe.config import checks
from stpipe.config.checks import CheckContext, run_checks


def found(defn, code=None, base_dir=None):
    out = run_checks(defn, CheckContext(base_dir=base_dir))
    assert not [p for p in out if p.code == "check.internal"], [p.render() for p in out]
    return [(p.code, p.path_str) for p in out if code is None or p.code == code], out


def router(**kw):
    node = {"type": "Router", "sub_modules": {"query": [{"type": "Normalize"}], "document": [{"type": "Normalize"}]}}
    node.update(kw)
    return {"modules": [node]}


# ----------------------------------------------------------------------------- ids and refs
def test_ids_and_refs_ok():
    d = router(sub_modules={"query": [{"type": "Normalize", "id": "n"}], "document": [{"ref": "n"}]})
    assert found(d)[0] == []


def test_duplicate_id():
    d = {"modules": [{"type": "Normalize", "id": "n"}, {"type": "Normalize", "id": "n"}]}
    codes, out = found(d)
    assert codes == [("check.duplicate-id", "modules[1].id")]
    assert "modules[0]" in out[0].hint and "{ref: n}" in out[0].hint


def test_unknown_ref_did_you_mean():
    d = {"modules": [{"type": "Normalize", "id": "encoder"}, {"ref": "encodr"}]}
    codes, out = found(d)
    assert codes == [("check.unknown-ref", "modules[1].ref")]
    assert out[0].hint == "did you mean 'encoder'? declared ids: encoder"


def test_ref_before_declaration_and_cycle():
    d = {"modules": [{"ref": "n"}, {"type": "Normalize", "id": "n"}]}
    assert found(d)[0] == [("check.ref-order", "modules[0].ref")]
    d = {"modules": [{"type": "Router", "id": "r", "sub_modules": {"a": [{"ref": "r"}]}}]}
    assert found(d)[0] == [("check.ref-cycle", "modules[0].sub_modules.a[0].ref")]


def test_truncate_dim_and_max_active_dims_belong_to_one_model_type():
    sparse = {"model_type": "SparseEncoder", "truncate_dim": 8, "modules": [{"type": "Normalize"}]}
    codes, out = found(sparse, "check.model-type")
    assert codes == [("check.model-type", "truncate_dim")] and "max_active_dims" in out[0].hint
    dense = {"max_active_dims": 8, "modules": [{"type": "Normalize"}]}
    assert found(dense, "check.model-type")[0] == [("check.model-type", "max_active_dims")]
    assert found({**sparse, "truncate_dim": None, "max_active_dims": 8}, "check.model-type")[0] == []
    assert found({**dense, "max_active_dims": None, "truncate_dim": 8}, "check.model-type")[0] == []


# ----------------------------------------------------------------------------- module options
def _t(**kw):
    return {"type": "Transformer", "model_name_or_path": "m", **kw}


def test_modality_config_needs_module_output_name():
    d = {"modules": [_t(modality_config={"text": {"method": "forward", "method_output_name": None}})]}
    assert found(d, "check.options")[0] == [("check.options", "modules[0].modality_config")]
    d["modules"][0]["module_output_name"] = "token_embeddings"
    assert found(d, "check.options")[0] == []


def test_exclusive_and_dependent_options():
    d = {"modules": [{"type": "Dense", "in_features": 2, "out_features": 1, "bias": False, "init_bias": [0.0]},
                     {"type": "SparseStaticEmbedding", "tokenizer": "t", "weight": [1.0], "path": "idf.json"}]}
    assert found(d, "check.options")[0] == [("check.options", "modules[0].init_bias"),
                                            ("check.options", "modules[1].path")]


def test_activation_name():
    d = {"modules": [{"type": "Dense", "in_features": 2, "out_features": 1, "activation_function": "tahn"}]}
    codes, out = found(d, "check.activation")
    assert codes == [("check.activation", "modules[0].activation_function")]
    assert out[0].hint == "did you mean 'tanh'?"
    for ok in ("tanh", "torch.nn.modules.activation.Tanh", "identity"):
        d["modules"][0]["activation_function"] = ok
        assert found(d, "check.activation")[0] == []


def test_remote_code_needs_the_top_level_switch():
    d = {"modules": [_t(model_kwargs={"trust_remote_code": True})]}
    assert found(d, "check.remote-code")[0] == [("check.remote-code", "modules[0].model_kwargs.trust_remote_code")]
    d["trust_remote_code"] = True
    assert found(d, "check.remote-code")[0] == []


@pytest.mark.parametrize("dtype, ok", [("bfloat16", True), ("torch.float16", True), ("auto", True),
                                       ("float99", False), ("bflot16", False)])
def test_dtype_names(dtype, ok):
    codes, out = found({"modules": [_t(model_kwargs={"torch_dtype": dtype})]}, "check.dtype")
    assert codes == ([] if ok else [("check.dtype", "modules[0].model_kwargs.torch_dtype")])
    if dtype == "bflot16":
        assert out[0].hint == "did you mean 'bfloat16'?"


def test_default_prompt_name_must_be_a_prompt():
    codes, out = found({"prompts": {"query": "q: ", "document": ""}, "default_prompt_name": "qeury",
                        "modules": []})
    assert codes == [("check.default-prompt", "default_prompt_name")]
    assert out[0].hint == "did you mean 'query'? defined prompts: query, document"


def test_static_embedding_dims():
    d = {"modules": [{"type": "StaticEmbedding", "tokenizer": "t"},
                     {"type": "StaticEmbedding", "tokenizer": "t", "embedding_weights": [[1, 2]], "embedding_dim": 3}]}
    assert found(d, "check.static-dims")[0] == [("check.static-dims", "modules[0].embedding_dim"),
                                                ("check.static-dims", "modules[1].embedding_dim")]


def test_dense_init_shapes():
    d = {"modules": [{"type": "Dense", "in_features": 2, "out_features": 1, "init_weight": [[1, 2, 3]],
                      "init_bias": [0, 0]}]}
    assert found(d, "check.init-shape")[0] == [("check.init-shape", "modules[0].init_weight"),
                                               ("check.init-shape", "modules[0].init_bias")]


# ----------------------------------------------------------------------------- robustness
def test_a_crashing_check_is_reported_not_raised(monkeypatch):
    def boom(defn, ctx):
        raise RuntimeError("boom")
        yield

    monkeypatch.setitem(checks.CHECKS, "check.boom", boom)
    out = run_checks({"modules": []})
    assert [(p.code, p.message) for p in out] == [("check.internal", "check 'check.boom' failed: RuntimeError('boom')")]


@pytest.mark.parametrize("defn", [
    None, [], {"modules": None}, {"modules": [None, 3, "x", []]}, {"prompts": [1], "default_prompt_name": 3},
    {"modules": [{"type": "Router", "sub_modules": [], "route_mappings": {"a": 1}, "default_route": 5}]},
    {"modules": [{"type": "Router", "sub_modules": {"a": None}, "route_mappings": [None, {"modality": {}}]}]},
    {"modules": [{"type": "Dense", "init_weight": [None], "in_features": 1, "out_features": 1, "init_bias": 3}]},
    {"modules": [{"type": "Transformer", "model_kwargs": [], "model_name_or_path": 5, "modality_config": 1}]},
    {"modules": [{"ref": None}, {"ref": []}, {"type": None, "id": 3}]},
])
def test_checks_tolerate_malformed_input(defn):
    found(defn)


def test_module_output_name_without_modality_config():
    d = {"modules": [_t(module_output_name="cls"), _t(module_output_name="token_embeddings"),
                     _t(transformer_task="sequence-classification", module_output_name="scores"),
                     _t(transformer_task="sequence-classification", module_output_name="token_embeddings")]}
    assert found(d, "check.options")[0] == [("check.options", "modules[0].module_output_name"),
                                            ("check.options", "modules[3].module_output_name")]
