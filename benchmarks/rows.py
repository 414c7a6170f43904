"""One row of the encode benchmark table: a backend × precision of stpipe and its sentence-transformers counterpart.

Shared by ``benchmarks/encode_vs_st.py`` (the table) and ``benchmarks/backend_rows.py`` (the ONNX/OpenVINO rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Row:
    backend: str            # "torch", "onnx", "openvino"
    precision: str          # "fp32", "int8" ...
    stpipe: Callable[[], Callable[[list[str]], np.ndarray]]   # builds once, returns encode(texts)->(N,D) float32
    st: Callable[[], Callable[[list[str]], np.ndarray]] | None  # ST counterpart, None: compare to ST fp32
