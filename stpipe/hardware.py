"""What the machine offers, torch-free: the model precision ``dtype: auto`` picks and the thread count of the
``threads`` run setting — one answer for every runtime (torch, and ONNX Runtime / OpenVINO, which read
:func:`resolved_threads` too).

``dtype`` (a model definition's top-level key, ``stpipe.build(..., dtype=)``, ``stpipe.load(..., dtype=)``):
``fp32`` | ``bf16`` | ``fp16`` | ``auto``. ``auto`` is bf16 where the hardware multiplies bf16 matrices natively — a
CPU with AMX (``amx_bf16``) or AVX512-BF16 (``avx512_bf16``) in ``/proc/cpuinfo``, or a CUDA GPU that supports
bf16 — and fp32 elsewhere (emulated bf16 is slower than fp32). The choice is logged (logger ``stpipe``).

>>> resolve_dtype("auto", "cpu", flags={"avx2", "avx512_bf16"})
'bf16'
>>> resolve_dtype("auto", "cpu", flags={"avx2"})
'fp32'
>>> resolve_dtype("bf16", "cpu")
'bf16'
>>> resolved_threads(3), resolved_threads(None) is None
(3, True)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

logger = logging.getLogger("stpipe")

DTYPES = ("fp32", "bf16", "fp16", "auto")
"""The values of a model definition's ``dtype``."""

TORCH_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
"""``dtype`` → the name of the torch dtype (``torch.<name>``) and of Hugging Face's ``model_kwargs.dtype``."""

NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""CPU flags (``/proc/cpuinfo``) of native bf16 matrix instructions."""


def read_cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (the first ``flags`` line of ``/proc/cpuinfo``; empty where there is none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


@cache
def cpu_flags() -> frozenset[str]:
    """:func:`read_cpu_flags` of this machine (read once)."""
    return read_cpu_flags()


def cpu_has_native_bf16(flags: Iterable[str] | None = None) -> bool:
    """Whether the CPU multiplies bf16 matrices natively (AMX or AVX512-BF16)."""
    found = set(cpu_flags() if flags is None else flags)
    return any(f in found for f in NATIVE_BF16_FLAGS)


def _cuda_bf16() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def resolve_dtype(dtype: str | None, device: Any = "cpu", *, flags: Iterable[str] | None = None,
                  cuda_bf16: Callable[[], bool] | None = None) -> str:
    """``dtype`` (None = fp32) with ``auto`` resolved for ``device``: bf16 on a CPU with native bf16 matrix
    support or a CUDA GPU that supports bf16, fp32 elsewhere. ``flags`` (CPU flags) / ``cuda_bf16`` replace the probes
    of this machine (for tests). A ValueError for a name outside :data:`DTYPES`."""
    if dtype is None:
        return "fp32"
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype != "auto":
        return dtype
    kind = str(device or "cpu").partition(":")[0]
    if kind == "cuda":
        native = (cuda_bf16 or _cuda_bf16)()
        why = "the GPU supports bf16" if native else "the GPU does not support bf16"
    elif kind == "cpu":
        found = sorted(set(cpu_flags() if flags is None else flags) & set(NATIVE_BF16_FLAGS))
        native = bool(found)
        why = (f"the CPU has native bf16 matrix support ({', '.join(found)})" if native
               else "the CPU has no native bf16 matrix support (no amx_bf16 / avx512_bf16)")
    else:
        native, why = False, f"device {kind!r} is not probed"
    choice = "bf16" if native else "fp32"
    logger.info("dtype auto → %s on %s: %s", choice, kind, why)
    return choice


def resolved_threads(threads: int | None) -> int | None:
    """The ``threads`` run setting resolved: a positive count, or None (leave each runtime's default:
    torch uses the physical cores). ONNX Runtime / OpenVINO sessions read this to match torch."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or null, got {threads!r}")
    return threads


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), for a runtime that needs an explicit count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


WORKER_MEMORY = 1 << 30
"""The memory a ``workers=N`` process is assumed to need (its model replica and a few chunks)."""


def available_memory(path: str = "/proc/meminfo") -> int | None:
    """Bytes of memory available to new processes (``MemAvailable``); None where it cannot be read."""
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def machine_workers(cpus: int | None = None, memory: int | None = None) -> tuple[int, str]:
    """How many ``workers=N`` processes this machine can run — one per CPU, each with :data:`WORKER_MEMORY` of
    available memory — and why.

    >>> machine_workers(cpus=16, memory=4 << 30)
    (4, '16 CPUs, 4.0 GiB of available memory (1 GiB per worker)')
    """
    cpus = available_cpus() if cpus is None else cpus
    memory = available_memory() if memory is None else memory
    cap = cpus if memory is None else min(cpus, memory // WORKER_MEMORY)
    mem = "" if memory is None else f", {memory / (1 << 30):.1f} GiB of available memory (1 GiB per worker)"
    return max(1, cap), f"{cpus} CPUs{mem}"
