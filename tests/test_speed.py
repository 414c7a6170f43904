"""Issue 10 (speed): token-count batching and the token budget, ``dtype`` as configuration (fp32 | bf16 | fp16 |
auto), and the ``threads`` run setting. Tiny models only; no timing here (that is benchmarks/encode_vs_st.py)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from stpipe.builder import build
from stpipe.errors import ConfigError

# character length and token count disagree: long words split into few pieces, short letters are one token each
TEXTS = ["cat", "a b c d e f g h i j", "international", "the dog runs", "x y", "water sea sky sun moon day night",
         "supercalifragilistic", "good", "the a an of to in and is was for on with", "red"]


def _definition(model_dir, *, dtype=None, dense=False, **transformer):
    modules = [{"type": "Transformer", "model_name_or_path": str(model_dir), **transformer},
               {"type": "Pooling", "pooling_mode": "mean"}]
    if dense:
        modules.append({"type": "Dense", "in_features": 32, "out_features": 16})
    modules.append({"type": "Normalize"})
    return {"modules": modules, **({"dtype": dtype} if dtype else {})}


@pytest.fixture(scope="module")
def pipe(tiny_bert_dir):
    return build(_definition(tiny_bert_dir), device="cpu")


def _batch_shapes(pipe, texts, **kwargs):
    """(encode's result, the input_ids shape of every forward pass, the token count of every text)."""
    shapes = []
    handle = pipe[0].register_forward_pre_hook(lambda m, args: shapes.append(tuple(args[0]["input_ids"].shape)))
    try:
        out = pipe.encode(texts, **kwargs)
    finally:
        handle.remove()
    counts = [len(pipe.tokenizer(t)["input_ids"]) for t in texts]
    return out, shapes, counts


# ---------------------------------------------------------------------------------------------- batching
def test_token_batches_sort_by_tokens_and_respect_the_budget():
    from stpipe.encoding import token_batches

    lengths = [3, 10, 5, 10, 1]
    assert token_batches(lengths, 2) == [[1, 3], [2, 0], [4]]  # descending, stable among equals
    batches = token_batches(lengths, 32, max_batch_tokens=12)
    assert sorted(i for b in batches for i in b) == list(range(5))
    assert all(len(b) * max(lengths[i] for i in b) <= 12 for b in batches)
    assert token_batches([40, 2], 8, max_batch_tokens=16) == [[0], [1]]  # longer than the budget: on its own


def test_batches_are_cut_by_token_count_and_padded_to_their_longest(pipe):
    out, shapes, counts = _batch_shapes(pipe, TEXTS, batch_size=3)
    ordered = sorted(counts, reverse=True)
    expected = [(len(ordered[i:i + 3]), ordered[i]) for i in range(0, len(ordered), 3)]
    assert shapes == expected  # character-length sorting would group (and pad) differently
    one_by_one = np.stack([pipe.encode(t) for t in TEXTS])  # no padding at all, input order
    np.testing.assert_allclose(out, one_by_one, atol=1e-6)
    # a caller's padding setting is honoured (the per-batch path: every batch padded to max_length)
    _, shapes, _ = _batch_shapes(pipe, TEXTS, batch_size=4,
                                 processing_kwargs={"text": {"padding": "max_length", "max_length": 20}})
    assert {t for _, t in shapes} == {20}


def test_max_batch_tokens_caps_padded_tokens(pipe):
    out, shapes, counts = _batch_shapes(pipe, TEXTS * 3, batch_size=64, max_batch_tokens=24)
    assert sum(b for b, _ in shapes) == len(TEXTS) * 3
    assert all(b * t <= 24 or b == 1 for b, t in shapes)
    assert len(shapes) > 1
    np.testing.assert_allclose(out, pipe.encode(TEXTS * 3), atol=1e-6)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_max_batch_tokens_must_be_positive(pipe, bad):
    with pytest.raises(ValueError, match="max_batch_tokens must be a positive integer"):
        pipe.encode(TEXTS, max_batch_tokens=bad)


# ---------------------------------------------------------------------------------------------- dtype
def _cos(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_bf16_is_close_to_fp32_and_runs_every_module_in_bf16(tiny_bert_dir):
    bf = build(_definition(tiny_bert_dir, dense=True, dtype="bf16"), device="cpu")
    fp = build(_definition(tiny_bert_dir, dense=True), device="cpu")
    bf[2].load_state_dict(fp[2].state_dict())  # the same Dense weights (random init)
    assert {p.dtype for p in bf.parameters()} == {torch.bfloat16}
    ours, ref = bf.encode(TEXTS), fp.encode(TEXTS)
    assert ours.dtype == np.float32
    assert _cos(ours, ref).min() >= 0.999


def test_fp32_is_bit_for_bit_sentence_transformers(tiny_bert_dir):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    st = SentenceTransformer(modules=[Transformer(str(tiny_bert_dir)), Pooling(32, "mean"), Normalize()],
                             device="cpu")
    ours = build(_definition(tiny_bert_dir, dtype="fp32"), device="cpu")
    assert {p.dtype for p in ours.parameters()} == {torch.float32}
    for text in TEXTS[:4]:  # one input: the same batch in both libraries
        np.testing.assert_array_equal(ours.encode(text), st.encode(text))
    np.testing.assert_allclose(ours.encode(TEXTS, batch_size=4), st.encode(TEXTS, batch_size=4), atol=1e-6)


def test_a_transformers_own_torch_dtype_wins(tiny_bert_dir):
    p = build(_definition(tiny_bert_dir, dtype="bf16", model_kwargs={"torch_dtype": "float16"}), device="cpu")
    assert {t.dtype for t in p.parameters()} == {torch.float16}


def test_model_dtype_override_validates_and_builds(tiny_bert_dir, tmp_path):
    import yaml

    from stpipe.commands.common import compose_checked, pipeline

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(_definition(tiny_bert_dir)))
    composed = compose_checked(str(path), ["model.dtype=bf16"])
    assert composed.definition["dtype"] == "bf16"
    assert {t.dtype for t in pipeline(composed).parameters()} == {torch.bfloat16}


def test_a_bad_dtype_is_a_config_error_naming_dtype(tiny_bert_dir, tmp_path):
    for call in (lambda: build(_definition(tiny_bert_dir), dtype="bf17"),
                 lambda: build({**_definition(tiny_bert_dir), "dtype": "float64"}),
                 lambda: build(_definition(tiny_bert_dir), dtype="half", validate=False)):
        with pytest.raises(ConfigError) as info:
            call()
        assert info.value.problems[0].path == ("dtype",)


def test_load_takes_a_dtype_and_a_saved_bf16_pipeline_loads_in_sentence_transformers(tiny_bert_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    import stpipe

    bf = build(_definition(tiny_bert_dir, dtype="bf16"), device="cpu")
    bf.save(tmp_path / "m")
    st = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    np.testing.assert_allclose(st.encode(TEXTS), bf.encode(TEXTS), atol=1e-2)
    again = stpipe.load(tmp_path / "m", device="cpu", dtype="fp32")
    assert {t.dtype for t in again.parameters()} == {torch.float32}
    with pytest.raises(ConfigError) as info:
        stpipe.load(tmp_path / "m", dtype="int4")
    assert info.value.problems[0].path == ("dtype",)


def test_auto_resolution_from_cpu_flags_and_gpu(tmp_path, caplog):
    from stpipe.hardware import cpu_has_native_bf16, read_cpu_flags, resolve_dtype

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f amx_tile amx_bf16\n\nprocessor\t: 1\n")
    flags = read_cpu_flags(str(info))
    assert "amx_bf16" in flags and cpu_has_native_bf16(flags)
    assert read_cpu_flags(str(tmp_path / "missing")) == frozenset()
    with caplog.at_level(logging.INFO, logger="stpipe"):
        assert resolve_dtype("auto", "cpu", flags=flags) == "bf16"
    assert "amx_bf16" in caplog.text and "bf16" in caplog.text
    assert resolve_dtype("auto", "cpu", flags={"avx512f", "avx512_bf16"}) == "bf16"
    assert resolve_dtype("auto", "cpu", flags={"avx2", "avx512f", "f16c"}) == "fp32"
    assert resolve_dtype("auto", "cuda:0", cuda_bf16=lambda: True) == "bf16"
    assert resolve_dtype("auto", "cuda", cuda_bf16=lambda: False) == "fp32"
    assert resolve_dtype("auto", "mps") == "fp32"
    assert resolve_dtype(None) == "fp32" and resolve_dtype("fp16", "cpu") == "fp16"
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("fp8")


# ---------------------------------------------------------------------------------------------- threads
def test_threads_setting_is_applied_to_torch():
    from stpipe.commands.common import apply_threads
    from stpipe.config.run import run_problems
    from stpipe.hardware import resolved_threads

    assert run_problems({"threads": 1, "max_batch_tokens": 512}) == []
    assert [p.path for p in run_problems({"threads": 0})] == [("threads",)]
    before = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1 and torch.get_num_threads() == 1
        assert apply_threads(None) == 1  # null leaves the runtime as it is
    finally:
        torch.set_num_threads(before)
    assert resolved_threads(4) == 4 and resolved_threads(None) is None
    with pytest.raises(ValueError, match="threads"):
        resolved_threads(0)


@pytest.mark.slow
def test_thread_and_dtype_resolution_are_torch_free():
    """ONNX Runtime / OpenVINO code reads the same settings without importing torch."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import json, sys, stpipe.hardware as h; h.resolved_threads(2); h.resolve_dtype('auto', 'cpu'); "
            "print(json.dumps([m for m in ('torch', 'transformers') if m in sys.modules]))")
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(repo)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
