"""``stpipe rank`` (:mod:`stpipe.commands.rank`), the cheap part: the checks made before any weight loads. Hits
against the oracle: tests/test_cross_encoder_cli.py."""

from __future__ import annotations


def test_an_embedding_model_is_refused_before_it_loads(cli, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("a\nb\n")
    rc, _, err = cli("rank", f"inputs={docs}", "query=q")
    assert rc == 2 and "[run.model-type]" in err and "stpipe rank" in err


def test_the_documents_file_is_read_as_lines_or_records(tmp_path):
    from stpipe.commands.rank import read_documents

    (tmp_path / "d.txt").write_text("first\n\nsecond\n")
    assert read_documents(str(tmp_path / "d.txt")) == ["first", "second"]
    (tmp_path / "d.jsonl").write_text('"first"\n{"text": "second"}\n')
    assert read_documents(str(tmp_path / "d.jsonl")) == ["first", "second"]
