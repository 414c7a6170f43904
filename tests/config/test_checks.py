"""Stage 2: semantic checks, case by case (code, exact path, hint)."""

from __future__ import annotations

import json

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


# ----------------------------------------------------------------------------- Router
def test_empty_route():
    d = router(sub_modules={"query": [], "document": [{"type": "Normalize"}]})
    assert found(d, "check.empty-route")[0] == [("check.empty-route", "modules[0].sub_modules.query")]


def test_default_route_must_exist():
    codes, out = found(router(default_route="documnet"))
    assert codes == [("check.default-route", "modules[0].default_route")]
    assert out[0].hint == "did you mean 'document'? available routes: query, document"


def test_route_mapping_target_must_exist():
    d = router(route_mappings=[{"task": "query", "route": "query"}, {"modality": "text", "route": "document"},
                               {"task": "query", "modality": "image", "route": "imgs"}])
    codes, out = found(d)
    assert codes == [("check.route-target", "modules[0].route_mappings[2].route")]
    assert out[0].hint == "available routes: query, document"
    assert out[0].message == "route mapping points to 'imgs', which is not a route of this Router"


def test_route_target_in_a_nested_router():
    inner = router(route_mappings=[{"task": "x", "route": "qeury"}])["modules"][0]
    d = router(sub_modules={"query": [inner], "document": [{"type": "Normalize"}]})
    codes, out = found(d)
    assert codes == [("check.route-target", "modules[0].sub_modules.query[0].route_mappings[0].route")]
    assert out[0].hint.startswith("did you mean 'query'?")


def test_modality_combinations():
    d = router(route_mappings=[{"modality": ["text", "text"], "route": "query"},
                               {"modality": ["message", "text"], "route": "document"}])
    assert found(d, "check.modality")[0] == [("check.modality", "modules[0].route_mappings[0].modality"),
                                             ("check.modality", "modules[0].route_mappings[1].modality")]


def test_duplicate_mapping_is_order_insensitive_for_modalities():
    d = router(route_mappings=[{"task": "query", "modality": ["text", "image"], "route": "query"},
                               {"task": "query", "modality": ["image", "text"], "route": "document"}])
    codes, out = found(d)
    assert codes == [("check.duplicate-mapping", "modules[0].route_mappings[1]")]
    assert "route_mappings[0]" in out[0].message


def test_modality_combinations_written_with_plus():
    d = router(route_mappings=[{"modality": "image+txt", "route": "query"},
                               {"modality": "text+text", "route": "document"},
                               {"modality": "message+text", "route": "document"}])
    codes, out = found(d, "check.modality")
    assert codes == [("check.modality", "modules[0].route_mappings[0].modality"),
                     ("check.modality", "modules[0].route_mappings[1].modality"),
                     ("check.modality", "modules[0].route_mappings[2].modality")]
    assert (out[0].message, out[0].hint) == ("'txt' in 'image+txt' is not a modality", "did you mean 'text'?")


@pytest.mark.parametrize("first, second", [(["text"], "text"), ("image+text", ["text", "image"]),
                                           ("text+image", "image+text")])
def test_duplicate_mapping_as_the_router_normalises_modalities(first, second):
    """[text] is 'text' and image+text is ('image', 'text') at run time (normalize_modality): the same key."""
    d = router(route_mappings=[{"modality": first, "route": "query"}, {"modality": second, "route": "document"}])
    assert found(d)[0] == [("check.duplicate-mapping", "modules[0].route_mappings[1]")]


def test_bad_modality_names_are_not_also_duplicates():
    d = router(route_mappings=[{"modality": "imag", "route": "query"}, {"modality": ["imag"], "route": "document"}])
    assert found(d, "check.duplicate-mapping")[0] == []


def test_truncate_dim_and_max_active_dims_belong_to_one_model_type():
    sparse = {"model_type": "SparseEncoder", "truncate_dim": 8, "modules": [{"type": "Normalize"}]}
    codes, out = found(sparse, "check.model-type")
    assert codes == [("check.model-type", "truncate_dim")] and "max_active_dims" in out[0].hint
    dense = {"max_active_dims": 8, "modules": [{"type": "Normalize"}]}
    assert found(dense, "check.model-type")[0] == [("check.model-type", "max_active_dims")]
    assert found({**sparse, "truncate_dim": None, "max_active_dims": 8}, "check.model-type")[0] == []
    assert found({**dense, "max_active_dims": None, "truncate_dim": 8}, "check.model-type")[0] == []


def test_catch_all_mapping_is_allowed():
    d = router(route_mappings=[{"task": "query", "route": "query"}, {"route": "document"}])
    assert found(d)[0] == []


def test_unreachable_route_is_a_warning():
    d = router(sub_modules={"query": [{"type": "Normalize"}], "document": [{"type": "Normalize"}],
                            "image": [{"type": "Normalize"}]},
               route_mappings=[{"task": "query", "route": "query"}, {"route": "document"}])
    codes, out = found(d)
    assert codes == [("check.unreachable-route", "modules[0].sub_modules.image")]
    assert out[0].severity == "warning"


def test_routes_reachable_by_task_name_or_default_are_not_reported():
    d = router(sub_modules={"query": [{"type": "Normalize"}], "document": [{"type": "Normalize"}],
                            "image": [{"type": "Normalize"}]},
               route_mappings=[{"modality": "text", "route": "query"}], default_route="document")
    assert found(d)[0] == []  # "image" is reached by task="image"


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


def test_load_from_must_be_a_directory(tmp_path):
    (tmp_path / "2_Normalize").mkdir()  # no config file: Normalize's defaults apply
    d = {"modules": [{"type": "Normalize", "load_from": "2_Normalize"}, {"type": "Normalize", "load_from": "nope"}]}
    assert found(d, "check.load-from", base_dir=tmp_path)[0] == [("check.load-from", "modules[1].load_from")]


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


def test_model_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    good = tmp_path / "good"
    good.mkdir()
    (good / "config.json").write_text(json.dumps({"hidden_size": 8}))
    (tmp_path / "empty").mkdir()
    d = {"modules": [_t(model_name_or_path="good"), _t(model_name_or_path="empty"),
                     _t(model_name_or_path="org/not-cached-model-xyz")]}
    codes, out = found(d, "check.model-path", base_dir=tmp_path)
    assert codes == [("check.model-path", "modules[1].model_name_or_path"),
                     ("check.model-path", "modules[2].model_name_or_path")]
    assert out[0].message == "'empty' holds no config.json"
    assert [p.severity for p in out] == ["error", "error"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    out = [p for p in run_checks(d, CheckContext(base_dir=tmp_path)) if p.code == "check.model-path"]
    assert [p.severity for p in out] == ["error", "warning"]  # online, a hub id may still be downloaded


def test_bundled_model_name_resolves(minilm_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert found({"modules": [_t(model_name_or_path="all-MiniLM-L6-v2")]}, "check.model-path")[0] == []


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


def test_load_from_folder_must_supply_what_the_node_omits(tmp_path):
    (tmp_path / "2_Dense").mkdir()
    (tmp_path / "2_Dense" / "config.json").write_text(json.dumps({"in_features": 4, "out_features": 2}))
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"hidden_size": 4}))
    d = {"modules": [{"type": "Dense", "load_from": "2_Dense"}, {"type": "Dense", "load_from": "bert"},
                     {"type": "Dense", "load_from": "bert", "in_features": 4, "out_features": 2}]}
    codes, out = found(d, "check.load-from", base_dir=tmp_path)
    assert codes == [("check.load-from", "modules[1].load_from")]
    assert out[0].message.startswith("Dense needs in_features, out_features, found neither in this node nor in ")


def test_module_output_name_without_modality_config():
    d = {"modules": [_t(module_output_name="cls"), _t(module_output_name="token_embeddings"),
                     _t(transformer_task="sequence-classification", module_output_name="scores"),
                     _t(transformer_task="sequence-classification", module_output_name="token_embeddings")]}
    assert found(d, "check.options")[0] == [("check.options", "modules[0].module_output_name"),
                                            ("check.options", "modules[3].module_output_name")]
