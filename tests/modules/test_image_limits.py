"""Image files are checked against an explicit pixel limit (``max_image_pixels``) from their header, before any
pixel is decoded: a small PNG declaring a huge image is refused with the input's index, never decoded, and PIL's
own decompression-bomb error never reaches the user raw."""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

import stpipe
from stpipe.modules.image_limits import check_image_file, max_image_pixels, set_max_image_pixels


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares ``width``×``height`` (1-bit grey) with a few bytes of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


CLIP_YAML = ("modules:\n  - type: Transformer\n    model_name_or_path: '{d}'\n"
             "    module_output_name: sentence_embedding\n"
             "    modality_config:\n      text: {{method: get_text_features, method_output_name: pooler_output}}\n"
             "      image: {{method: get_image_features, method_output_name: pooler_output}}\n")


def test_a_header_above_the_limit_is_refused_before_decoding(tmp_path):
    big = png_declaring(tmp_path / "big.png", 13300, 13300)
    bomb = png_declaring(tmp_path / "bomb.png", 60000, 60000)
    assert big.stat().st_size < 1000 and max_image_pixels() == 50_000_000
    before, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(ValueError, match=r"13300×13300 = 176,890,000 pixels, more than max_image_pixels=50,000,000"):
        check_image_file(big)
    with pytest.raises(ValueError, match=r"3,600,000,000 pixels, more than max_image_pixels"):  # PIL's bomb error
        check_image_file(bomb)
    assert time.perf_counter() - t0 < 30 and (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) < 2 ** 21
    set_max_image_pixels(200_000_000)
    try:
        check_image_file(big)  # the setting raises the limit
    finally:
        set_max_image_pixels(50_000_000)


def test_the_pipeline_names_the_input(tmp_path, tiny_clip_dir):
    from PIL import Image

    Image.new("RGB", (16, 16), "red").save(tmp_path / "ok.png")
    big = png_declaring(tmp_path / "big.png", 13300, 13300)
    (tmp_path / "m.yaml").write_text(CLIP_YAML.format(d=tiny_clip_dir))
    pipe = stpipe.build(str(tmp_path / "m.yaml"), device="cpu")
    with pytest.raises(ValueError, match=r"input 1 \('.*big.png'\): the image declares 13300×13300"):
        pipe.encode([str(tmp_path / "ok.png"), str(big)])
    with pytest.raises(ValueError, match=r"input 0 \(image '.*big.png'\): the image declares"):
        pipe.encode([{"image": str(big)}])


@pytest.mark.slow
def test_the_cli_refuses_a_huge_image_line_with_its_line_number(tmp_path, tiny_clip_dir):
    from PIL import Image

    Image.new("RGB", (16, 16), "red").save(tmp_path / "ok.png")
    png_declaring(tmp_path / "big.png", 13300, 13300)
    png_declaring(tmp_path / "bomb.png", 60000, 60000)  # PIL's own bomb error: checked in-process above
    (tmp_path / "m.yaml").write_text(CLIP_YAML.format(d=tiny_clip_dir))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    (tmp_path / "in.txt").write_text("ok.png\nbig.png\nbomb.png\n")  # the first refused stops the run
    r = subprocess.run([sys.executable, "-m", "stpipe", "encode", "m.yaml", "inputs=in.txt", "output=e.npy"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert r.returncode == 2 and "in.txt:2" in r.stderr and "13300×13300" in r.stderr, r.stderr
    assert "max_image_pixels" in r.stderr and "Traceback" not in r.stderr and not (tmp_path / "e.npy").exists()
