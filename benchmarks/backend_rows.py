"""The ONNX Runtime / OpenVINO rows of the encode benchmark: stpipe's whole-pipeline graph exports
(``stpipe export … format=onnx|openvino [quantize=int8]``) of a model directory, loaded with ``stpipe.load``.

``backend_rows(model_dir, work)`` returns one :class:`rows.Row` per format × precision (onnx fp32/int8, openvino
fp32/int8); each row's ``stpipe()`` exports once into ``work/<format>-<precision>`` (reused when already there) and
returns ``encode(texts) -> (N, D) float32``. ``st`` is None: sentence-transformers' own ONNX/OpenVINO backends need
optimum, which is not a dependency, so these rows compare to sentence-transformers fp32 (torch). Threads: the
runtimes take torch's thread count (``torch.set_num_threads`` / the ``threads`` run setting).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rows import Row  # noqa: E402

BATCH_SIZE = 32
VARIANTS = (("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32"), ("openvino", "int8"))


def exported(model_dir: Path, work: Path, fmt: str, precision: str) -> Path:
    """``work/<fmt>-<precision>``: the export of ``model_dir`` (made now unless an earlier run left it)."""
    import stpipe
    from stpipe.exports import export
    from stpipe.formats.exported import MANIFEST

    out = Path(work, f"{fmt}-{precision}")
    if not (out / MANIFEST).is_file():
        pipe = stpipe.load(model_dir, device="cpu")
        export(pipe, out, fmt, quantize=None if precision == "fp32" else precision)
    return out


def _row(model_dir: Path, work: Path, fmt: str, precision: str) -> Row:
    def build() -> Callable[[list[str]], np.ndarray]:
        import stpipe

        pipe = stpipe.load(exported(model_dir, work, fmt, precision))
        return lambda texts: pipe.encode(texts, batch_size=BATCH_SIZE, convert_to_numpy=True)

    return Row(backend=fmt, precision=precision, stpipe=build, st=None)


def backend_rows(model_dir: Path, work: Path) -> list[Row]:
    """One row per exported format × precision of ``model_dir`` (exports under ``work``)."""
    return [_row(Path(model_dir), Path(work), fmt, precision) for fmt, precision in VARIANTS]
