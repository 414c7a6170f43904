"""Hardware probes (:mod:`stpipe.hardware`): CPU flags, ``dtype=auto`` and ``threads``, with the probes replaced."""

from __future__ import annotations

import pytest

from stpipe.hardware import cpu_has_native_bf16, read_cpu_flags, resolve_dtype, resolved_threads


def test_cpu_flags_come_from_the_first_flags_line(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nflags\t\t: fpu sse avx512_bf16\nflags\t\t: other\n")
    assert read_cpu_flags(str(f)) == frozenset({"fpu", "sse", "avx512_bf16"})
    assert read_cpu_flags(str(tmp_path / "missing")) == frozenset()
    assert cpu_has_native_bf16({"amx_bf16"}) and not cpu_has_native_bf16({"avx2"})


def test_auto_is_bf16_only_where_the_hardware_multiplies_it_natively():
    assert resolve_dtype("auto", "cpu", flags={"avx512_bf16"}) == "bf16"
    assert resolve_dtype("auto", "cpu", flags={"avx2"}) == "fp32"
    assert resolve_dtype("auto", "cuda:0", cuda_bf16=lambda: True) == "bf16"
    assert resolve_dtype("auto", "cuda", cuda_bf16=lambda: False) == "fp32"
    assert resolve_dtype("auto", "mps") == "fp32"
    assert resolve_dtype(None) == "fp32" and resolve_dtype("fp16") == "fp16"
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("float16")


def test_threads_is_a_positive_count_or_none():
    assert resolved_threads(None) is None and resolved_threads(4) == 4
    for bad in (0, -1, True, 2.0, "4"):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            resolved_threads(bad)
