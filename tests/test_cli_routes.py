"""``stpipe encode`` on the seed examples: ``task=query|document`` picks the Router route, and inputs may be images
(a file of image paths) or text+image records (JSONL ``{"text": …, "image": path}``). Expected rows come from the
sentence-transformers oracle built from the same stand-in modules (see ``test_seed_examples.oracle``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_seed_examples import TEXTS, oracle, picture

from stpipe.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def oracles(standins, minilm_dir) -> dict:
    return {name: oracle(name, standins, minilm_dir) for name in ("asymmetric", "multimodal")}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli-inputs")
    for i in range(3):
        picture(i, (40 + 4 * i, 40)).save(d / f"img{i}.png")
    (d / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    (d / "images.txt").write_text("img0.png\nimg1.png\nimg2.png\n")
    (d / "mixed.txt").write_text("img1.png\na photo of a cat\nimg0.png\n")
    records = [{"text": "a photo of a cat", "image": "img0.png"}, {"image": "img2.png", "text": "two dogs"},
               {"text": "just text"}, "plain text", {"image": "img1.png"}]
    (d / "records.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return d


def image(files: Path, i: int) -> Image.Image:
    return Image.open(files / f"img{i}.png").convert("RGB")


def encode(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["encode", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_task_query_and_document_pick_the_routes(capsys, files, tmp_path, oracles, standins):
    q, d = tmp_path / "q.npy", tmp_path / "d.npy"
    for task, out in (("query", q), ("document", d)):
        rc, stdout, stderr = encode(capsys, "model=asymmetric", f"inputs={files / 'texts.txt'}", f"output={out}",
                                    f"task={task}")
        assert rc == 0, stderr
        assert f"encoded {len(TEXTS)} inputs" in stdout
    q, d = np.load(q), np.load(d)
    assert q.shape == d.shape == (len(TEXTS), 384)
    assert (np.abs(q - d).max(axis=1) > 1e-2).all()  # every row differs: the routes are different encoders
    ref = oracles["asymmetric"]
    assert np.abs(q - ref.encode_query(TEXTS)).max() <= 1e-5
    assert np.abs(d - ref.encode_document(TEXTS)).max() <= 1e-5


def test_unknown_task_is_a_clear_error(capsys, files, standins):
    rc, _, err = encode(capsys, "model=asymmetric", f"inputs={files / 'texts.txt'}", "task=querry")
    assert rc == 2 and "task 'querry' is served by no route" in err and "did you mean 'query'?" in err
    assert "Traceback" not in err


def test_a_file_of_image_paths(capsys, files, tmp_path, oracles, standins):
    ref = oracles["multimodal"]
    out = tmp_path / "img.npy"
    rc, stdout, stderr = encode(capsys, "model=multimodal", f"inputs={files / 'images.txt'}", f"output={out}")
    assert rc == 0, stderr
    assert np.abs(np.load(out) - ref.encode([image(files, i) for i in range(3)])).max() <= 1e-5
    rc, _, stderr = encode(capsys, "model=multimodal", f"inputs={files / 'mixed.txt'}", f"output={out}")
    assert rc == 0, stderr  # image and text lines in one file: each goes to its route, rows stay in order
    expected = np.stack([ref.encode(x) for x in (image(files, 1), "a photo of a cat", image(files, 0))])
    assert np.abs(np.load(out) - expected).max() <= 1e-5


def test_a_jsonl_of_text_image_records(capsys, files, tmp_path, oracles, standins):
    ref = oracles["multimodal"]
    out = tmp_path / "rec.jsonl"
    rc, stdout, stderr = encode(capsys, "model=multimodal", f"inputs={files / 'records.jsonl'}", f"output={out}",
                                "task=query")
    assert rc == 0, stderr
    assert "encoded 5 inputs" in stdout
    rows = np.array([json.loads(line) for line in out.read_text().splitlines()], dtype=np.float32)
    inputs = [{"text": "a photo of a cat", "image": image(files, 0)}, {"image": image(files, 2), "text": "two dogs"},
              "just text", "plain text", image(files, 1)]
    expected = np.stack([ref.encode_query(x) for x in inputs])
    assert rows.shape == (5, 16) and np.abs(rows - expected).max() <= 1e-5


@pytest.mark.parametrize("record, message", [
    ('{"text": 5}', "'text' must be a string, found 5"),
    ('{"image": 7}', "'image' must be an image file path (relative to the inputs file), found 7"),
    ('{"image": "missing.png"}', "cannot open image"),
    ('{"text": "a cat", "image": "records.jsonl"}', "cannot open image"),
    ('{"txt": "a cat"}', "unknown key(s) ['txt']"),
    ("[1, 2]", "expected a string or an object like"),
    ('{"text": "a cat",', "invalid JSON"),
])
def test_bad_record_is_exit_2_without_traceback(capsys, files, tmp_path, record, message, standins):
    bad = files / "bad.jsonl"  # next to the images, so a relative image path would resolve
    bad.write_text('{"text": "fine"}\n' + record + "\n")
    rc, _, err = encode(capsys, "model=multimodal", f"inputs={bad}", f"output={tmp_path / 'x.npy'}")
    assert rc == 2 and f"{bad}:2: " in err and message in err and "Traceback" not in err
    assert not (tmp_path / "x.npy").exists()


def test_images_on_a_text_only_model_are_refused(capsys, files, standins, tmp_path):
    """An explicit image (a JSONL record's "image") is refused by a text-only model; a line of a text file that
    names an image file is its text there, as Pipeline.encode treats such a string (see test_cli_hostile)."""
    (tmp_path / "img.jsonl").write_text(json.dumps({"image": str(files / "img0.png")}) + "\n")
    rc, _, err = encode(capsys, "model=asymmetric", f"inputs={tmp_path / 'img.jsonl'}")
    assert rc == 2 and "Modality 'image' is not supported by this SentenceTransformer model" in err
    rc, out, err = encode(capsys, "model=asymmetric", f"inputs={files / 'images.txt'}")
    assert rc == 0 and "encoded 3 inputs" in out, err


@pytest.mark.slow
def test_bad_record_in_a_real_process(files, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a cat", "image": 3}\n')
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "stpipe", "encode", "model=multimodal", f"inputs={bad}"],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert r.returncode == 2 and f"{bad}:1: 'image' must be an image file path" in r.stderr
    assert "Traceback" not in r.stderr


def test_sparse_model_writes_sparse_jsonl_rows(capsys, files, tmp_path, standins):
    """A SparseEncoder's rows are written as their non-zero dimensions; they equal what sentence-transformers'
    SparseEncoder computes from the same saved model."""
    from sentence_transformers import SparseEncoder

    import stpipe
    from stpipe.resources import conf_dir

    out = tmp_path / "s.jsonl"
    rc, stdout, stderr = encode(capsys, "model=sparse", "task=query", f"inputs={files / 'texts.txt'}", f"output={out}")
    assert rc == 0, stderr
    assert "sparse float32" in stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    saved = tmp_path / "saved"
    stpipe.build(conf_dir() / "model" / "sparse.yaml", device="cpu").save(str(saved))
    ref = SparseEncoder(str(saved), device="cpu").encode_query(TEXTS, convert_to_tensor=True).to_dense()
    assert len(rows) == len(TEXTS)
    for row, expected in zip(rows, ref):
        nz = expected.nonzero().flatten().tolist()
        assert row["indices"] == nz
        assert np.abs(np.array(row["values"]) - expected[nz].numpy()).max() <= 1e-5
