"""Router against sentence-transformers' Router (the oracle): route resolution, errors, properties,
preprocess/forward, and router_config.json in both directions."""

from __future__ import annotations

import itertools
import json
import logging

import pytest
import torch
from sentence_transformers.base.modules import Dense as STDense
from sentence_transformers.base.modules import Module as STModule
from sentence_transformers.base.modules import Normalize as STNormalize
from sentence_transformers.base.modules import Router as STRouter
from sentence_transformers.sentence_transformer.modules import StaticEmbedding as STStatic
from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding as STSparseStatic
from tokenizers import Tokenizer

from stpipe import registry
from stpipe.errors import ConfigError, LoadError
from stpipe.modules.dense import Dense
from stpipe.modules.modality import normalize_modality
from stpipe.modules.module import Module
from stpipe.modules.normalize import Normalize
from stpipe.modules.router import RouteError, Router, format_route_key, parse_route_key
from stpipe.modules.sparse import SparseStaticEmbedding
from stpipe.modules.static import StaticEmbedding


class STTag(STModule):
    """Oracle-side trivial module: records its name and the kwargs it received."""

    forward_kwargs = {"task", "modality", "foo"}

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, features, **kw):
        features.setdefault("trail", []).append((self.name, kw))
        return features

    def save(self, *args, **kwargs) -> None:
        pass


class Tag(Module):
    """stpipe-side twin of STTag."""

    forward_kwargs = {"task", "modality", "foo"}

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, features, **kw):
        features.setdefault("trail", []).append((self.name, kw))
        return features

    def save(self, *args, **kwargs) -> None:
        pass


# (routes, kwargs) with route_mappings in the seed's tuple-key form
CONSTRUCTIONS = [
    (["query", "document"], dict(default_route="document")),
    (["a", "b", "c"], dict(allow_empty_key=False, route_mappings={
        ("q", "text"): "a", (None, ("text", "image")): "b", ("q", None): "c", (None, "image"): "c"})),
    (["a", "b"], dict(route_mappings={(None, None): "b", ("q", "text"): "a"})),
    (["text", "image", "query"], dict(allow_empty_key=False)),
    (["x", "y"], dict(default_route="y", route_mappings={("document", ("audio", "text")): "x", ("query", None): "x",
                                                          (None, ("image",)): "y"})),
    (["x", "y"], dict(allow_empty_key=False, route_mappings={("q", ("image", "text")): "x", (None, "audio"): "y"})),
]
TASKS = [None, "query", "document", "q", "foo", "", "a", "text"]
MODALITIES = [None, "text", "image", ("text", "image"), ("image", "text"), ("audio", "text"), ("image",), "audio",
              "a", "query", "", ["text"], "image+text", "text+audio"]


def _yaml_form(mappings: dict) -> list[dict]:
    """The YAML list form, with tuple modalities reversed (order must not matter)."""
    out = []
    for (task, modality), route in mappings.items():
        entry = {"route": route}
        if task is not None:
            entry["task"] = task
        if modality is not None:
            entry["modality"] = list(reversed(modality)) if isinstance(modality, tuple) else modality
        out.append(entry)
    return out


def _outcome(router, task, modality):
    try:
        trail = router.forward({}, task=task, modality=modality)["trail"]
        return "route", trail[0][0], trail[0][1]
    except ValueError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("case", range(len(CONSTRUCTIONS)))
@pytest.mark.parametrize("form", ["tuples", "yaml"])
@pytest.mark.parametrize("training", [False, True])
def test_route_resolution_matches_oracle(case, form, training):
    """The oracle's resolution, with every modality (mapping keys and queries) in normalize_modality's form: a
    1-element tuple is the bare name, 'a+b' the sorted tuple (sentence-transformers compares them literally, so
    its ('image',) key never matches an image input)."""
    routes, kwargs = CONSTRUCTIONS[case]
    ref_kwargs = dict(kwargs)
    if "route_mappings" in kwargs:
        ref_kwargs["route_mappings"] = {(t, normalize_modality(m)): r
                                        for (t, m), r in kwargs["route_mappings"].items()}
    ref = STRouter({r: [STTag(r)] for r in routes}, **ref_kwargs).train(training)
    ours_kwargs = dict(kwargs)
    if form == "yaml" and "route_mappings" in kwargs:
        ours_kwargs["route_mappings"] = _yaml_form(kwargs["route_mappings"])
    ours = Router({r: [Tag(r)] for r in routes}, **ours_kwargs).train(training)
    assert ours.default_route == ref.default_route
    assert ours.route_mappings == ref.route_mappings
    for task, modality in itertools.product(TASKS, MODALITIES):
        route = _outcome(ours, task, modality)
        expected = _outcome(ref, task, normalize_modality(modality) if modality else modality)
        if route[0] == "route":  # the module gets the modality as given
            expected = (*expected[:2], {**expected[2], "modality": modality})
        assert route == expected, (task, modality)


def test_priority_order_case_by_case():
    """Each step of the seed's list, with the answer the oracle gives for the same Router."""
    mappings = {("query", "text"): "r1", ("query", None): "r2", (None, "image"): "r3", (None, None): "r4",
                (None, ("image", "text")): "r5"}
    routes = ["r1", "r2", "r3", "r4", "r5", "query", "image"]
    ref = STRouter({r: [STTag(r)] for r in routes}, route_mappings=mappings).eval()
    ours = Router({r: [Tag(r)] for r in routes}, route_mappings=mappings).eval()
    for task, modality, expected in [("query", "text", "r1"), ("query", "image", "r2"), (None, "image", "r3"),
                                     ("document", "image", "r3"), (None, "text", "r4"), ("document", "audio", "r4"),
                                     (None, ("text", "image"), "r5"), (None, ("image", "text"), "r5")]:
        assert ours.resolve_route(task, modality) == expected
        assert _outcome(ref, task, modality)[1] == expected
    # steps 5-7: task as a route name, modality as a route name, default route
    ref = STRouter({r: [STTag(r)] for r in ["d", "query", "image"]}, default_route="d").eval()
    ours = Router({r: [Tag(r)] for r in ["d", "query", "image"]}, default_route="d").eval()
    for task, modality, expected in [("query", "image", "query"), (None, "image", "image"), (None, "text", "d")]:
        assert ours.resolve_route(task, modality) == expected == _outcome(ref, task, modality)[1]


def test_unknown_explicit_task_never_falls_back():
    ours = Router.for_query_document([Tag("q")], [Tag("d")]).eval()
    with pytest.raises(RouteError, match=r"^No route found for task type 'foo'\. Available routes: task='query' and "
                                         r"task='document'$"):
        ours.resolve_route("foo", "text")
    assert ours.resolve_route(None, "text") == "document"


def test_no_route_messages_list_routes():
    ours = Router({"a": [Tag("a")], "b": [Tag("b")]}, allow_empty_key=False,
                  route_mappings=[{"modality": ["text", "image"], "route": "b"}, {"task": "q", "route": "a"},
                                  {"task": "q", "modality": ["audio", "text"], "route": "a"}])
    assert ours.routes_description() == ("task='a', task='b', modality='image+text', task='q' and "
                                         "(task='q', modality='audio+text')")
    with pytest.raises(RouteError, match="^You must provide a `router_mapping` argument"):
        ours.train().resolve_route(None, "audio")
    with pytest.raises(RouteError) as exc:
        ours.eval().resolve_route(None, "audio")
    assert str(exc.value).startswith("Could not determine route for task=None, modality='audio'. Available routes: "
                                     "task='a', task='b', modality='image+text'")


@pytest.mark.parametrize("kwargs", [
    dict(sub_modules={}),
    dict(sub_modules=None),
    dict(sub_modules="A", default_route="x"),
    dict(sub_modules="A", route_mappings={(None, "text"): "zz"}),
    dict(sub_modules="AB", default_route="c", route_mappings={("q", None): "a"}),
])
def test_construction_errors_match_oracle(kwargs):
    def subs(tag):
        s = kwargs["sub_modules"]
        return {r.lower(): [tag(r.lower())] for r in s} if isinstance(s, str) else s

    with pytest.raises(ValueError) as expected:
        STRouter(**{**kwargs, "sub_modules": subs(STTag)})
    with pytest.raises(ConfigError) as got:
        Router(**{**kwargs, "sub_modules": subs(Tag)})
    assert isinstance(got.value, ValueError)
    assert got.value.problems[0].message == str(expected.value)


def test_yaml_mapping_errors_are_collected_with_paths():
    with pytest.raises(ConfigError) as exc:
        Router({"a": [Tag("a")]}, default_route="b",
               route_mappings=[{"task": "z", "route": "x"}, {"modality": "text"}, {"task": "q", "route": "a"},
                               {"task": "q", "route": "a"}, {"modality": [], "route": "a"}])
    found = {(p.code, p.path_str) for p in exc.value.problems}
    assert found == {("check.default-route", "default_route"), ("check.router.mapping", "route_mappings[1]"),
                     ("check.duplicate-mapping", "route_mappings[3]"),
                     ("check.router.mapping", "route_mappings[4].modality"),
                     ("check.route-target", "route_mappings[0].route")}
    hint = next(p.hint for p in exc.value.problems if p.code == "check.default-route")
    assert hint == "available routes: a"
    with pytest.raises(ConfigError, match="invalid route name"):
        Router({"a.b": [Tag("a")]})
    with pytest.raises(ConfigError, match="torch cannot hold"):
        Router({"update": [Tag("a")]})


def test_route_key_strings():
    for key in [("query", "text"), (None, ("image", "text")), ("document", None), (None, None)]:
        assert parse_route_key(format_route_key(key)) == key
        assert format_route_key(key) == str(key)  # what sentence-transformers writes
    assert format_route_key((None, ("text", "image"))) == "(None, ('image', 'text'))"
    assert parse_route_key("(None, ('text', 'image'))") == (None, ("image", "text"))
    # normalize_modality's semantics: a 1-element tuple is the bare name, 'a+b' the sorted tuple
    assert format_route_key(("q", ("text",))) == format_route_key(("q", ["text"])) == str(("q", "text"))
    assert format_route_key((None, "text+image")) == str((None, ("image", "text")))
    assert parse_route_key("('q', ('text',))") == ("q", "text")
    assert parse_route_key("(None, 'text+image')") == (None, ("image", "text"))
    for bad in ["query", "('a', 'b', 'c')", "(None, ['image', 'text'])", "(1, 'text')", "__import__('os')",
                "('a', ('text', 2))", "(" * 500 + ")" * 500, "('a', {'b'})"]:
        with pytest.raises(ValueError):
            parse_route_key(bad)


# ============================================================================ real modules
@pytest.fixture(scope="module")
def tok_dir(tiny_bert_dir):
    """The tiny BERT's fast WordPiece tokenizer (tokenizer.json)."""
    return tiny_bert_dir


@pytest.fixture()
def tok(tok_dir):
    return Tokenizer.from_file(str(tok_dir / "tokenizer.json"))


TEXTS = ["the cat runs", "What is the capital of France?", "a dog"]


def _twins(tok, seed=0):
    """Equal-weight pairs (oracle, stpipe): a shared StaticEmbedding, two Dense, a shared Normalize."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(tok.get_vocab_size(), 8, generator=g)
    st_static, static = STStatic(tok, embedding_weights=w), StaticEmbedding(tok, embedding_weights=w)
    st_dense = [STDense(8, 4), STDense(8, 4)]
    dense = [Dense(8, 4, init_weight=d.linear.weight.detach(), init_bias=d.linear.bias.detach()) for d in st_dense]
    return (st_static, st_dense, STNormalize()), (static, dense, Normalize())


MAPPINGS = {("query", "text"): "query", (None, ("text", "image")): "document", ("document", None): "document"}


def _routers(tok):
    (s1, d1, n1), (s2, d2, n2) = _twins(tok)
    ref = STRouter({"query": [s1, d1[0], n1], "document": [s1, d1[1], n1]}, route_mappings=MAPPINGS)
    ours = Router({"query": [s2, d2[0], n2], "document": [s2, d2[1], n2]}, route_mappings=_yaml_form(MAPPINGS))
    return ref.eval(), ours.eval()


def _encode(router, task):
    return router(router.preprocess(TEXTS, task=task))["sentence_embedding"].detach()


def _assert_same_outputs(a, b):
    for task in ("query", "document", None):
        assert (_encode(a, task) - _encode(b, task)).abs().max().item() <= 1e-5


def test_preprocess_and_forward_match_oracle(tok):
    ref, ours = _routers(tok)
    for task in ("query", "document", None):
        f_ref, f_ours = ref.preprocess(TEXTS, task=task), ours.preprocess(TEXTS, task=task)
        assert f_ours.keys() == f_ref.keys() and f_ours["task"] == f_ref["task"]
        assert f_ours["modality"] == f_ref["modality"] == "text"
        assert torch.equal(f_ours["input_ids"], f_ref["input_ids"])
    _assert_same_outputs(ref, ours)
    f_ref = ref.preprocess([{"query": t} for t in TEXTS])
    f_ours = ours.preprocess([{"query": t} for t in TEXTS])
    assert f_ours["task"] == f_ref["task"] == "query" and torch.equal(f_ours["input_ids"], f_ref["input_ids"])
    with pytest.raises(ValueError) as expected:
        ref.preprocess([{"query": "x"}, {"document": "y"}])
    with pytest.raises(RouteError) as got:
        ours.preprocess([{"query": "x"}, {"document": "y"}])
    assert str(got.value) == str(expected.value)


def test_task_dicts_mixed_with_other_inputs_are_refused(tok):
    """sentence-transformers unwraps [{"query": x}, ...] only when the *first* input is such a dict (and then fails
    on a plain input); stpipe refuses any mix, wherever the dicts are."""
    ref, ours = _routers(tok)
    for mixed in ([{"query": "x"}, "y"], ["y", {"query": "x"}], [{"text": "y"}, {"query": "x"}]):
        with pytest.raises(RouteError, match=r"^You cannot mix dictionaries with task types as keys"):
            ours.preprocess(mixed)
    with pytest.raises(AttributeError):
        ref.preprocess([{"query": "x"}, "y"])
    assert ours.preprocess(["y"], task=None)["task"] is None


def test_one_element_and_plus_modalities_are_normalised(tok, tmp_path):
    """Mapping keys and queried modalities follow normalize_modality: ["text"] ≡ "text", "image+text" ≡
    ("image", "text"); the saved key is the normalised one, which sentence-transformers then matches."""
    for mappings in ([{"modality": ["text"], "route": "b"}], {(None, ("text",)): "b"}, {"(None, ('text',))": "b"}):
        router = Router({"a": [Tag("a")], "b": [Tag("b")]}, route_mappings=mappings).eval()
        assert router.route_mappings == {(None, "text"): "b"}
        assert router.resolve_route(None, "text") == router.resolve_route(None, ["text"]) == "b"
    plus = Router({"a": [Tag("a")], "b": [Tag("b")]}, route_mappings=[{"modality": "image+text", "route": "b"}])
    assert plus.route_mappings == {(None, ("image", "text")): "b"}
    for modality in ("image+text", "text+image", ("text", "image"), ["image", "text"]):
        assert plus.eval().resolve_route(None, modality) == "b"
    assert plus.resolve_route(None, "text") == "a"
    with pytest.raises(ConfigError) as exc:  # the same key twice
        Router({"a": [Tag("a")]}, route_mappings=[{"modality": "text", "route": "a"}, {"modality": ["text"],
                                                                                       "route": "a"}])
    assert [p.code for p in exc.value.problems] == ["check.duplicate-mapping"]
    # saved, then loaded by the oracle: its text inputs take the mapped route (a ('text',) key would never match)
    _, (static, dense, _) = _twins(tok)
    saved = Router({"a": [static], "b": [static, dense[0]]}, route_mappings=[{"modality": ["text"], "route": "b"}])
    saved.save(str(tmp_path / "r"))
    keys = json.loads((tmp_path / "r" / "router_config.json").read_text())["parameters"]["route_mappings"]
    assert keys == {"(None, 'text')": "b"}
    loaded = STRouter.load(str(tmp_path / "r")).eval()
    theirs = loaded(loaded.preprocess(TEXTS))["sentence_embedding"].detach()
    mine = saved.eval()(saved.preprocess(TEXTS))["sentence_embedding"].detach()
    assert theirs.shape == mine.shape == (len(TEXTS), 4) and (theirs - mine).abs().max().item() <= 1e-5


def test_forward_passes_kwargs_like_oracle():
    ref = STRouter({"a": [STTag("a")], "b": [STTag("b")]}).eval()
    ours = Router({"a": [Tag("a")], "b": [Tag("b")]}).eval()
    for feats, kw in [({"task": "b", "modality": "text"}, dict(foo=1, bar=2)), ({}, dict(task="b", foo=1)),
                      ({"task": "a"}, dict(task="b"))]:
        assert ours.forward(dict(feats), **kw)["trail"] == ref.forward(dict(feats), **kw)["trail"]


def test_properties_match_oracle(tok, tok_dir, caplog):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(0)
    ref = STRouter({"a": [STStatic(tok, embedding_dim=8)], "b": [STSparseStatic(hf)]})
    ours = Router({"a": [StaticEmbedding(tok, embedding_dim=8)], "b": [SparseStaticEmbedding(hf)]})
    assert ours.modalities == ref.modalities == ["text"]
    with caplog.at_level(logging.WARNING):
        assert ours.max_seq_length == ref.max_seq_length == float("inf")
        assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == 8
    assert "Different max_seq_lengths detected" in caplog.text
    assert "Different embedding dimensions detected across routes" in caplog.text
    assert ours.tokenizer is ours.sub_modules["a"][0].tokenizer
    ours.max_seq_length = 16  # StaticEmbedding has no limit to set; the other input module takes it
    assert ours.sub_modules["b"][0].max_seq_length == 16
    assert ours.get_config_dict() == ref.get_config_dict()


def test_on_model_ready_reaches_every_module():
    seen = []

    class Ready(Tag):
        def on_model_ready(self, model):
            seen.append((self.name, model))

    shared = Ready("s")
    Router({"a": [shared, Ready("x")], "b": [shared]}).on_model_ready("M")
    assert seen == [("s", "M"), ("x", "M")]


# ============================================================================ files
def test_saved_router_config_matches_oracle_and_loads_in_oracle(tok, tmp_path):
    ref, ours = _routers(tok)
    ref.save(str(tmp_path / "st"))
    ours.save(str(tmp_path / "ours"))
    cfg_ref = json.loads((tmp_path / "st" / "router_config.json").read_text())
    cfg_ours = json.loads((tmp_path / "ours" / "router_config.json").read_text())
    assert cfg_ours == cfg_ref
    assert cfg_ours["structure"]["document"] == ["query_0_StaticEmbedding", "document_1_Dense", "query_2_Normalize"]
    for d in ("st", "ours"):
        assert sorted(p.name for p in (tmp_path / d).iterdir()) == sorted(["router_config.json", *cfg_ref["types"]])
    loaded = STRouter.load(str(tmp_path / "ours")).eval()
    assert loaded.sub_modules["query"][0] is loaded.sub_modules["document"][0]
    assert loaded.route_mappings == ours.route_mappings
    _assert_same_outputs(loaded, ours)


def test_loads_oracle_save_with_shared_modules(tok, tmp_path):
    ref, _ = _routers(tok)
    ref.save(str(tmp_path / "st"))
    ours = Router.load(str(tmp_path / "st")).eval()
    assert ours.sub_modules["query"][0] is ours.sub_modules["document"][0]
    assert ours.sub_modules["query"][2] is ours.sub_modules["document"][2]
    assert ours.sub_modules["query"][1] is not ours.sub_modules["document"][1]
    assert ours.route_mappings == ref.route_mappings and ours.default_route == ref.default_route
    _assert_same_outputs(ref, ours)
    # and back: stpipe re-saves the same file
    ours.save(str(tmp_path / "again"))
    assert (json.loads((tmp_path / "again" / "router_config.json").read_text())
            == json.loads((tmp_path / "st" / "router_config.json").read_text()))


def test_legacy_asym_config_json(tok, tmp_path):
    ref, _ = _routers(tok)
    ref.save(str(tmp_path))
    (tmp_path / "router_config.json").rename(tmp_path / "config.json")
    ours = Router.load(str(tmp_path)).eval()
    _assert_same_outputs(ref, ours)


def _saved_config(tmp_path, tok):
    ref, _ = _routers(tok)
    ref.save(str(tmp_path))
    return json.loads((tmp_path / "router_config.json").read_text())


@pytest.mark.parametrize("bad_key", ["query", "('query', 'text', 'x')", "(None, ['image', 'text'])",
                                     "__import__('os').system('true')", "(1, 2)"])
def test_unparseable_mapping_key_is_a_load_error(tok, tmp_path, bad_key):
    cfg = _saved_config(tmp_path, tok)
    cfg["parameters"]["route_mappings"][bad_key] = "query"
    (tmp_path / "router_config.json").write_text(json.dumps(cfg))
    with pytest.raises(LoadError) as exc:
        Router.load(str(tmp_path))
    assert str(tmp_path / "router_config.json") in str(exc.value) and repr(bad_key) in str(exc.value)


@pytest.mark.parametrize("edit, match", [
    (lambda c: c["structure"]["query"].append("nowhere"), "no entry in \"types\""),
    (lambda c: c["structure"].update(evil=["../evil"]) or c["types"].update({"../evil": "x"}), "unsafe module path"),
    (lambda c: c["parameters"].update(extra=1), "parameters"),
    (lambda c: c["parameters"].update(default_route="nope"), "Default route 'nope' not found"),
    (lambda c: c["parameters"]["route_mappings"].update({"(None, 'audio')": "nope"}), "mapping to 'nope'"),
    (lambda c: c.pop("types"), "not a Router config"),
    (lambda c: c["types"].update(query_1_Dense="my.custom.Dense"), "custom code"),
])
def test_malformed_router_config_is_a_load_error(tok, tmp_path, edit, match):
    cfg = _saved_config(tmp_path, tok)
    edit(cfg)
    (tmp_path / "router_config.json").write_text(json.dumps(cfg))
    with pytest.raises(LoadError, match=match):
        Router.load(str(tmp_path))


def test_missing_config_is_a_load_error(tmp_path):
    with pytest.raises(LoadError, match="no router_config.json"):
        Router.load(str(tmp_path))


# ============================================================================ YAML nodes
def _builder(built: list):
    ids: dict = {}

    def build_child(node, path):
        if "ref" in node:
            return ids[node["ref"]]
        params = {k: v for k, v in node.items() if k not in ("type", "id")}
        module = registry.get(node["type"])(**params)
        built.append(path)
        if "id" in node:
            ids[node["id"]] = module
        return module

    return build_child


def test_build_from_node_shares_referenced_modules():
    built: list = []
    node = {"sub_modules": {"query": [{"type": "Normalize", "id": "n"}, {"type": "Dense", "in_features": 4,
                                                                          "out_features": 2}],
                            "document": [{"ref": "n"}]},
            "default_route": "document", "route_mappings": [{"task": "query", "modality": "text", "route": "query"}]}
    router = Router.build_from_node(node, _builder(built), ("modules", 0))
    assert router.sub_modules["query"][0] is router.sub_modules["document"][0]
    assert built == [("modules", 0, "sub_modules", "query", 0), ("modules", 0, "sub_modules", "query", 1)]
    assert router.route_mappings == {("query", "text"): "query"} and router.default_route == "document"


def test_build_from_node_checks_before_building_children():
    built: list = []
    node = {"sub_modules": {"query": [{"type": "Normalize"}]}, "default_route": "doc",
            "route_mappings": [{"task": "q", "route": "nope"}], "extra": 1}
    with pytest.raises(ConfigError) as exc:
        Router.build_from_node(node, _builder(built), ("modules", 1))
    assert built == []
    assert {p.path_str for p in exc.value.problems} == {"modules[1].extra"}
    del node["extra"]
    with pytest.raises(ConfigError) as exc:
        Router.build_from_node(node, _builder(built), ("modules", 1))
    assert {p.path_str for p in exc.value.problems} == {"modules[1].default_route",
                                                        "modules[1].route_mappings[0].route"}
    with pytest.raises(ConfigError, match="cannot be empty"):
        Router.build_from_node({"sub_modules": {}}, _builder(built), ("modules", 1))
    assert built == []


def test_to_node_and_node_from_dir(tok, tmp_path):
    _, ours = _routers(tok)
    node = ours.to_node(lambda m, mid: {"type": registry.name_of(m), "load_from": mid})
    assert node["route_mappings"] == [{"task": "query", "modality": "text", "route": "query"},
                                      {"modality": ["image", "text"], "route": "document"},
                                      {"task": "document", "route": "document"}]
    assert node["sub_modules"]["query"][0] == {"type": "StaticEmbedding", "id": "query_0_StaticEmbedding",
                                               "load_from": "query_0_StaticEmbedding"}
    assert node["sub_modules"]["query"][1] == {"type": "Dense", "load_from": "query_1_Dense"}
    assert node["sub_modules"]["document"] == [{"ref": "query_0_StaticEmbedding"},
                                               {"type": "Dense", "load_from": "document_1_Dense"},
                                               {"ref": "query_2_Normalize"}]
    assert node["default_route"] == "query" and node["allow_empty_key"] is True
    ref, _ = _routers(tok)
    ref.save(str(tmp_path))
    from_dir = Router.node_from_dir(str(tmp_path))
    assert from_dir["route_mappings"] == node["route_mappings"]
    assert from_dir["sub_modules"]["document"][1] == {"type": "Dense", "load_from": str(tmp_path / "document_1_Dense")}
    assert from_dir["sub_modules"]["document"][0] == {"ref": "query_0_StaticEmbedding"}
    rebuilt = Router.build_from_node(
        {k: v for k, v in from_dir.items() if k != "type"},
        _loader(), ("modules", 0)).eval()
    assert rebuilt.sub_modules["query"][0] is rebuilt.sub_modules["document"][0]
    _assert_same_outputs(ref, rebuilt)


def _loader():
    ids: dict = {}

    def build_child(node, path):
        if "ref" in node:
            return ids[node["ref"]]
        module = registry.get(node["type"]).load(node["load_from"])
        if "id" in node:
            ids[node["id"]] = module
        return module

    return build_child


def test_describe_follows_routes():
    params = {"sub_modules": {"query": [{"type": "StaticEmbedding", "tokenizer": "t", "embedding_dim": 8, "id": "s"},
                                        {"type": "Dense", "in_features": 8, "out_features": 4}],
                              "document": [{"ref": "s"}, {"type": "Dense", "in_features": 8, "out_features": 4}]}}
    io = Router.describe(params, {})
    assert io.produces.get("sentence_embedding") == 4
    params["sub_modules"]["document"] = [{"ref": "s"}]
    assert Router.describe(params, {}).produces == {"sentence_embedding": None}
    assert Router.describe({"sub_modules": {"q": [{"type": "Nope"}]}}, {}).produces == {}


# ============================================================================ the seed's SPLADE example
@pytest.fixture(scope="module")
def mlm_dir(tiny_mlm_dir):
    """The tiny BertForMaskedLM with its tokenizer."""
    return tiny_mlm_dir


def _sparse_outputs(router) -> list[torch.Tensor]:
    return [_encode(router, task) for task in ("query", "document")]


def test_splade_router_matches_oracle_and_round_trips(mlm_dir, tmp_path):
    from sentence_transformers.base.modules import Transformer as STTransformer
    from sentence_transformers.sparse_encoder.modules import SpladePooling as STSplade

    from stpipe.modules.sparse import SpladePooling
    from stpipe.modules.transformer import Transformer

    (tmp_path / "idf.json").write_text(json.dumps({"cat": 2.0, "the": 0.5, "capital": 3.0, "dog": 1.5}))
    st_doc = STTransformer(str(mlm_dir), transformer_task="fill-mask")
    ref = STRouter.for_query_document(
        [STSparseStatic.from_json(str(tmp_path / "idf.json"), tokenizer=st_doc.tokenizer, frozen=True)],
        [st_doc, STSplade("max", "log1p_relu")]).eval()
    doc = Transformer(str(mlm_dir), transformer_task="fill-mask")
    ours = Router.for_query_document(
        [SparseStaticEmbedding.from_json(str(tmp_path / "idf.json"), tokenizer=doc.tokenizer, frozen=True)],
        [doc, SpladePooling("max", "log1p_relu")]).eval()
    expected = _sparse_outputs(ref)
    for a, b in zip(_sparse_outputs(ours), expected):
        assert a.shape == b.shape and torch.count_nonzero(a) > 0
        assert torch.equal(a.nonzero(), b.nonzero()) and (a - b).abs().max().item() <= 1e-5
    ours.save(str(tmp_path / "ours"))
    ref.save(str(tmp_path / "st"))
    for a, b in zip(_sparse_outputs(STRouter.load(str(tmp_path / "ours")).eval()), expected):
        assert (a - b).abs().max().item() <= 1e-5
    for a, b in zip(_sparse_outputs(Router.load(str(tmp_path / "st")).eval()), expected):
        assert (a - b).abs().max().item() <= 1e-5
    assert (json.loads((tmp_path / "ours" / "router_config.json").read_text())
            == json.loads((tmp_path / "st" / "router_config.json").read_text()))


# ================================================================ a route module in the root (issue 20 item 4)
def test_a_leaf_route_module_stored_in_the_root_loads_like_the_oracle(tiny_bert_dir, tmp_path):
    """Module id "" in router_config.json: the Transformer's files lie next to modules.json. Before issue 18 stpipe
    refused it ("its routes form a cycle"); sentence-transformers 6.2 loads it and encodes. A Router stored in
    its own folder stays refused (tests/test_security_files.py)."""
    import shutil

    from sentence_transformers import SentenceTransformer

    import stpipe

    torch.manual_seed(0)
    pipe = stpipe.build({"modules": [{"type": "Router", "sub_modules": {
        "query": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)}, {"type": "Pooling"}],
        "document": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                     {"type": "Pooling", "pooling_mode": "cls"}]}}]}, device="cpu")
    root = tmp_path / "m"
    pipe.save(root)
    cfg = json.loads((root / "router_config.json").read_text())
    leaf = cfg["structure"]["query"][0]
    assert leaf.endswith("Transformer")
    for f in (root / leaf).iterdir():  # the query Transformer's files move into the root
        shutil.move(str(f), root / f.name)
    (root / leaf).rmdir()
    cfg["types"][""] = cfg["types"].pop(leaf)
    cfg["structure"]["query"][0] = ""
    (root / "router_config.json").write_text(json.dumps(cfg))

    oracle = SentenceTransformer(str(root), device="cpu")
    ours = stpipe.load(root, device="cpu")
    for task in ("query", "document"):
        want = oracle.encode(TEXTS, task=task, convert_to_numpy=True)
        got = ours.encode(TEXTS, task=task, convert_to_numpy=True)
        assert got.shape == want.shape and abs(got - want).max() <= 1e-5, task
