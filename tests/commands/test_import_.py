"""``stpipe import DIR`` names the model as it was saved, not after the directory."""

from __future__ import annotations

import yaml

import stpipe
from stpipe.cli import main


def test_import_names_the_model_after_its_saved_name(tmp_path, tiny_bert_dir, capsys):
    pipe = stpipe.build({"name": "my model_[v2]", "modules": [
        {"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)}, {"type": "Pooling"}]})
    pipe.save(tmp_path / "some-directory")
    assert main(["import", str(tmp_path / "some-directory")]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["name"] == "my model_[v2]"
    (tmp_path / "some-directory" / "README.md").write_text("# Not ours\n")  # a card stpipe did not write
    assert main(["import", str(tmp_path / "some-directory")]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["name"] == "some-directory"
