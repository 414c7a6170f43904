"""Property: validation is total and sound.

Valid model definitions are mutated at random (values replaced by other JSON values, keys deleted,
misspelt or added, modules dropped, duplicated or reordered). For every mutant:

* ``stpipe.validate`` either accepts it or raises ``ConfigError`` — never any other exception;
* a mutant it accepts then builds without error.

The number of mutants, accepted and rejected, is printed in pytest's terminal summary and asserted (both kinds
occur, in a stable band). A second family feeds hostile input — YAML alias bombs, deep nesting, non-UTF-8 files,
huge numbers, symlinks (loops, dangling, a directory, /dev/zero) — and still finds only clean errors.
"""

from __future__ import annotations

import contextlib
import copy
import os
import resource
import string
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
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
def _check_mutants(base_definitions, data):
    base = data.draw(st.sampled_from(base_definitions))
    mutant = _mutate(base, data)
    STATS["cases"] += 1
    if _validates(mutant) == "rejected":
        STATS["rejected"] += 1
        return
    STATS["accepted"] += 1
    try:
        stpipe.build(mutant, validate=False)
    except Exception as exc:  # noqa: BLE001 - any failure here is the bug this test looks for
        pytest.fail(f"validate() accepted a definition that fails to build: {type(exc).__name__}: {exc}\n{mutant}")


def _validates(definition: Any) -> str:
    """"accepted" or "rejected" (a ConfigError); any other exception fails the test."""
    try:
        with warnings.catch_warnings():  # warnings (e.g. routes of different dims) are allowed outcomes
            warnings.simplefilter("ignore", ConfigWarning)
            stpipe.validate(definition)
    except ConfigError:
        return "rejected"
    return "accepted"


def test_validation_is_total_and_sound(base_definitions):
    STATS.clear()
    _check_mutants(base_definitions)
    cases, accepted, rejected = STATS["cases"], STATS["accepted"], STATS["rejected"]
    assert cases >= N_CASES * 0.9 and accepted + rejected == cases
    # mutations are mostly harmful, but harmless ones (a dropped Normalize, a duplicated id-less node …) exist:
    # a share outside this band means the mutator or the validator changed behaviour
    assert 0.1 * cases <= accepted <= 0.4 * cases, STATS


# --------------------------------------------------------------------------- hostile inputs
HOSTILE = Counter()
N_HOSTILE = 300
HUGE = [10**400, -(10**30), 2**63, float("inf"), float("-inf"), float("nan"), 1e308, -1]


@contextlib.contextmanager
def memory_guard(extra: int = 3 << 30):
    """Cap this process's address space at its current size + ``extra`` while the block runs: a regression (an
    alias bomb expanded without bound) raises MemoryError and fails the test instead of exhausting the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    size = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _bomb(levels: int, width: int) -> str:
    text = "x-a: &a [" + ", ".join(["lol"] * width) + "]\n"
    for i in range(1, levels):
        text += f"x-{i}: &a{i} [{', '.join([f'*a{i - 1}' if i > 1 else '*a'] * width)}]\n"
    return text


def _deep(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"modules": value}
    return value


def _hostile_case(kind: str, base: dict, d: Path, data) -> tuple[str, Any]:
    """(what to validate, the definition: a dict or a file path) for one hostile input of ``kind``."""
    f = d / f"m{HOSTILE['cases']}.yaml"
    if kind == "alias":
        f.write_text(yaml.safe_dump(base) + _bomb(data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))))
        return kind, str(f)
    if kind == "deep":
        mutant = copy.deepcopy(base)
        path = data.draw(st.sampled_from([p for p in _paths(mutant) if p]))
        _get(mutant, path[:-1])[path[-1]] = _deep(_get(mutant, path), data.draw(st.integers(1, 400)),
                                                 data.draw(st.booleans()))
        return kind, mutant
    if kind == "utf8":
        raw = yaml.safe_dump(base).encode()
        at = data.draw(st.integers(0, len(raw)))
        f.write_bytes(raw[:at] + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\x80\x80", b"\xed\xa0\x80"]))
                      + raw[at:])
        return kind, str(f)
    if kind == "huge":
        mutant = copy.deepcopy(base)
        path = data.draw(st.sampled_from([p for p in _paths(mutant) if p]))
        _get(mutant, path[:-1])[path[-1]] = data.draw(st.sampled_from(HUGE))
        return kind, mutant
    target = data.draw(st.sampled_from(["loop", "dangling", "dir", "/dev/zero", "valid"]))
    link = d / f"link{HOSTILE['cases']}"
    if target == "loop":
        os.symlink(link, link)
    elif target == "valid":
        f.write_text(yaml.safe_dump(base))
        os.symlink(f, link)
    else:
        os.symlink({"dangling": d / "nothing-here", "dir": d}.get(target, target), link)
    if data.draw(st.booleans()):
        return kind, str(link)  # the model file itself
    mutant = copy.deepcopy(base)
    node = next((n for _, n in _nodes(mutant) if "model_name_or_path" in n or "tokenizer" in n), None)
    if node is not None:
        node["model_name_or_path" if "model_name_or_path" in node else "tokenizer"] = str(link)
    return kind, mutant


def _nodes(defn: dict) -> list[tuple[tuple, dict]]:
    return [(p, _get(defn, p)) for p in _paths(defn) if isinstance(_get(defn, p), dict) and "type" in _get(defn, p)]


@settings(max_examples=N_HOSTILE, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def _check_hostile(base_definitions, directory, data):
    kind, case = _hostile_case(data.draw(st.sampled_from(["alias", "deep", "utf8", "huge", "symlink"])),
                               data.draw(st.sampled_from(base_definitions)), directory, data)
    HOSTILE["cases"] += 1
    with memory_guard():
        outcome = _validates(case)
    HOSTILE[kind, outcome] += 1
    if kind == "deep" and outcome == "accepted":  # a harmless depth (a list in a list param …) also builds
        with memory_guard():
            try:
                stpipe.build(case, validate=False)
            except ConfigError:
                pass


def test_hostile_inputs_are_clean_errors(base_definitions, tmp_path):
    """Alias bombs, deep nesting, non-UTF-8 files, huge numbers and symlinks (loops, dangling, a directory,
    /dev/zero): validation still either accepts or raises ConfigError, in bounded memory."""
    HOSTILE.clear()
    _check_hostile(base_definitions, tmp_path)
    assert HOSTILE["cases"] >= N_HOSTILE * 0.9
    for kind in ("alias", "deep", "utf8", "huge", "symlink"):
        assert HOSTILE[kind, "rejected"] > 0, HOSTILE  # every family is exercised and caught
    assert HOSTILE["utf8", "accepted"] == 0 and HOSTILE["alias", "accepted"] == 0
    print(f"hostile-input property test: {HOSTILE['cases']} cases, {dict(HOSTILE)}")
