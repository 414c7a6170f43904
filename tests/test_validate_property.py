"""Property: validation is total and sound.

Valid model definitions are mutated at random (values replaced by other JSON values, keys deleted,
misspelt or added, modules dropped, duplicated or reordered). For every mutant:

* ``stpipe.validate`` either accepts it or raises ``ConfigError`` — never any other exception;
* a mutant it accepts then builds without error.

The number of mutants, accepted and rejected, is printed in pytest's terminal summary.
"""

from __future__ import annotations

import copy
import string
import warnings
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stpipe
from stpipe.errors import ConfigError, ConfigWarning

pytestmark = pytest.mark.slow  # thousands of generated definitions

STATS: Counter = Counter()
N_CASES = 3000

KEYS = ["type", "model_name_or_path", "pooling_mode", "in_features", "out_features", "activation_function",
        "module_input_name", "module_output_name", "include_prompt", "embedding_dimension", "max_seq_length",
        "do_lower_case", "bias", "transformer_task", "model_kwargs", "torch_dtype", "backend", "prompts",
        "similarity_fn_name", "truncate_dim", "default_prompt_name", "id", "ref", "load_from", "modules",
        "sub_modules", "default_route", "route_mappings", "route", "task", "modality", "use_residual"]
WORDS = ["mean", "max", "cls", "meen", "tanh", "relu", "nonsense", "Transformer", "Pooling", "Dense", "Normalize",
         "Router", "query", "document", "text", "image", "bfloat16", "float99", "sentence_embedding",
         "token_embeddings", "cosine", "dot", "", "torch", "onnx", "fill-mask", "os.system", "../../etc"]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-3, max_value=2000), st.sampled_from([0.5, -1.0, 1e9]),
    st.sampled_from(WORDS), st.text(alphabet=string.ascii_letters + "._-", max_size=8),
)
json_values = st.recursive(json_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(st.sampled_from(KEYS), kids, max_size=3)), max_leaves=6)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _get(obj: Any, path: tuple) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def _mutate(defn: dict, data) -> dict:
    d = copy.deepcopy(defn)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(d)
        path = data.draw(st.sampled_from(paths))
        op = data.draw(st.sampled_from(["set", "delete", "add", "typo", "list"]))
        if not path:
            continue
        parent, key = _get(d, path[:-1]), path[-1]
        if op == "set":
            parent[key] = data.draw(json_values)
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(_get(d, path), dict):
            _get(d, path)[data.draw(st.sampled_from(KEYS))] = data.draw(json_values)
        elif op == "typo" and isinstance(key, str):
            cut = data.draw(st.integers(0, max(0, len(key) - 1)))
            parent[key[:cut] + key[cut + 1:]] = parent.pop(key)
        elif op == "list" and isinstance(_get(d, path), list) and _get(d, path):
            lst = _get(d, path)
            i = data.draw(st.integers(0, len(lst) - 1))
            choice = data.draw(st.sampled_from(["drop", "dup", "swap"]))
            if choice == "drop":
                lst.pop(i)
            elif choice == "dup":
                lst.insert(i, copy.deepcopy(lst[i]))
            else:
                lst[0], lst[i] = lst[i], lst[0]
    return d


@pytest.fixture(scope="module")
def base_definitions(tiny_bert_dir) -> list[dict]:
    bert = str(tiny_bert_dir)
    return [
        {"name": "tiny", "similarity_fn_name": "cosine", "prompts": {"query": "query: ", "document": ""},
         "modules": [
             {"type": "Transformer", "model_name_or_path": bert, "max_seq_length": 32},
             {"type": "Pooling", "pooling_mode": "mean"},
             {"type": "Dense", "in_features": 32, "out_features": 16, "activation_function": "tanh"},
             {"type": "Normalize"},
         ]},
        {"model_type": "SentenceTransformer", "modules": [
            {"type": "Router", "default_route": "document",
             "sub_modules": {
                 "query": [{"type": "StaticEmbedding", "tokenizer": bert, "embedding_dim": 32}],
                 "document": [{"type": "Transformer", "model_name_or_path": bert, "id": "enc"},
                              {"type": "Pooling", "pooling_mode": ["cls", "mean"]},
                              {"type": "Dense", "in_features": 64, "out_features": 32}]},
             "route_mappings": [{"task": "query", "route": "query"}, {"modality": "text", "route": "document"}]},
            {"type": "Normalize"},
        ]},
    ]


def test_base_definitions_are_valid_and_build(base_definitions):
    for d in base_definitions:
        pipe = stpipe.build(d)
        assert pipe.encode(["a cat"]).shape[-1] > 0


@settings(max_examples=N_CASES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_validation_is_total_and_sound(base_definitions, data):
    base = data.draw(st.sampled_from(base_definitions))
    mutant = _mutate(base, data)
    STATS["cases"] += 1
    try:
        with warnings.catch_warnings():  # warnings (e.g. routes of different dims) are allowed outcomes
            warnings.simplefilter("ignore", ConfigWarning)
            stpipe.validate(mutant)
    except ConfigError:
        STATS["rejected"] += 1
        return
    STATS["accepted"] += 1
    try:
        stpipe.build(mutant, validate=False)
    except Exception as exc:  # noqa: BLE001 - any failure here is the bug this test looks for
        pytest.fail(f"validate() accepted a definition that fails to build: {type(exc).__name__}: {exc}\n{mutant}")
