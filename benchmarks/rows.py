"""One line of the benchmark table (``benchmarks/encode_vs_st.py``), in its own tiny module so that the table and
``benchmarks/backend_rows.py`` (ONNX / OpenVINO rows) both import it without an import cycle.

An encoder factory builds its model once (untimed) and returns ``encode(texts) -> (N, D) float32 array``; the
benchmark times that function on each text set (STS-B dev sentences, ~120-word passages), interleaved with the
row's sentence-transformers counterpart in alternating order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Encode = Callable[[list[str]], np.ndarray]
"""``encode(texts)`` → an (N, D) float32 array (batch size and device are the factory's business)."""


@dataclass
class Row:
    """One line of the table: a backend × precision, measured on every text set."""

    backend: str  # "torch", "onnx", "openvino"
    precision: str  # "fp32", "bf16", "fp16", "int8", "auto" …
    stpipe: Callable[[], Encode]  # builds stpipe's encoder once, returns encode(texts)
    st: Callable[[], Encode] | None = None  # the sentence-transformers counterpart; None: ST's default (fp32)
    st_label: str = "fp32"  # how the table names the counterpart's configuration
    note: str = ""  # shown under the table (e.g. what auto resolved to)
