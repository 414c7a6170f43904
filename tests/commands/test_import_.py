"""``stpipe import DIR`` (:mod:`stpipe.commands.import_`): the YAML it prints rebuilds the saved model."""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = ["A man is playing a guitar.", "What is the capital of France?", "Paris is the capital of France."]

def test_import_of_a_missing_directory(cli, tmp_path):
    rc, _, err = cli("import", str(tmp_path / "nope"))
    assert rc == 2 and f"'{tmp_path / 'nope'}' does not exist" in err

def test_router_with_routes_of_different_sizes_saved_by_sentence_transformers(cli, tmp_path, tiny_bert_dir):
    """sentence-transformers allows (and only logs) routes of different dimensions: import, then build, works
    and gives its embeddings."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Router, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    import stpipe

    bert = str(tiny_bert_dir)
    router = Router.for_query_document([Transformer(bert), Pooling(32)], [Transformer(bert), Pooling(32),
                                                                         Dense(32, 8)])
    st = SentenceTransformer(modules=[router], device="cpu")
    st.save(str(tmp_path / "saved"))
    rc, out, err = cli("import", str(tmp_path / "saved"))
    assert rc == 0, err
    (tmp_path / "m.yaml").write_text(out)
    with pytest.warns(UserWarning, match="graph.route-dims"):
        pipe = stpipe.build(str(tmp_path / "m.yaml"))
    assert np.abs(pipe.encode_query(TEXTS) - st.encode_query(TEXTS)).max() <= 1e-5
    assert np.abs(pipe.encode_document(TEXTS) - st.encode_document(TEXTS)).max() <= 1e-5
    rc, _, err = cli("validate", str(tmp_path / "saved"))
    assert rc == 0 and "warning [graph.route-dims]" in err


def test_import_names_the_model_after_its_saved_name(tmp_path, tiny_bert_dir, capsys):
    import yaml

    import stpipe
    from stpipe.cli import main

    pipe = stpipe.build({"name": "my model_[v2]", "modules": [
        {"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)}, {"type": "Pooling"}]})
    pipe.save(tmp_path / "some-directory")
    assert main(["import", str(tmp_path / "some-directory")]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["name"] == "my model_[v2]"
    (tmp_path / "some-directory" / "README.md").write_text("# Not ours\n")  # a card stpipe did not write
    assert main(["import", str(tmp_path / "some-directory")]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["name"] == "some-directory"
