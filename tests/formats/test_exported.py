"""A graph export is contained like every saved model (issue 19, item 5): a link out of the folder is refused, a
folder that is half export, half saved model and a truncated manifest are LoadErrors — never raw tracebacks."""

from __future__ import annotations

import json

import pytest

import stpipe
from stpipe.errors import LoadError
from stpipe.formats.exported import MANIFEST, to_definition


def fake_export(root):
    root.mkdir()
    manifest = {"stpipe_export": 1, "format": "onnx", "precision": "fp32", "name": "x",
                "routes": {"": {"graph": "model.onnx", "tokenizer": ".", "inputs": ["input_ids"]}}, "router": None,
                "files": [MANIFEST, "model.onnx", "tokenizer.json"]}
    (root / MANIFEST).write_text(json.dumps(manifest))
    (root / "model.onnx").write_bytes(b"graph")
    (root / "tokenizer.json").write_text("{}")
    return root


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json"])
def test_a_file_linked_to_outside_the_export_is_refused(tmp_path, name):
    root = fake_export(tmp_path / "exp")
    assert to_definition(root)["modules"][0]["type"] == "GraphEncoder"  # contained: fine
    outside = tmp_path / f"outside-{name}"
    (root / name).rename(outside)
    (root / name).symlink_to(outside)
    with pytest.raises(LoadError, match=f"'{name}' is a link to '{outside}', outside the export"):
        stpipe.load(str(root))
    (root / name).unlink()
    (root / name).symlink_to(f"../{outside.name}")  # relative, the same escape
    with pytest.raises(LoadError, match="outside the export"):
        to_definition(root)


def test_a_link_inside_the_export_is_fine(tmp_path):
    root = fake_export(tmp_path / "exp")
    (root / "model.onnx").rename(root / "real.onnx")
    (root / "model.onnx").symlink_to("real.onnx")
    assert to_definition(root)["modules"][0]["export_dir"] == str(root)


def test_a_folder_with_both_an_export_manifest_and_modules_json_is_a_load_error(tmp_path):
    root = fake_export(tmp_path / "exp")
    (root / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "x.Transformer"}]))
    with pytest.raises(LoadError, match="holds both an export manifest and a saved model's modules.json"):
        stpipe.load(str(root))


def test_a_truncated_export_manifest_is_a_load_error(tmp_path):
    root = fake_export(tmp_path / "exp")
    text = (root / MANIFEST).read_text()
    (root / MANIFEST).write_text(text[: len(text) // 2])
    with pytest.raises(LoadError, match="malformed JSON"):
        stpipe.load(str(root))
