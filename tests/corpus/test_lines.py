"""Corpus parsing (issue 19, items 9 and 15): one quoting rule per format, malformed quoting refused with its line,
every input bounded by max_input_chars, ids of one type, stdin read line by line."""

from __future__ import annotations

import io
import sys

import pytest

from stpipe.corpus.readers import open_source
from stpipe.errors import CommandError


def rows(src) -> list:
    out = []
    for k in range(len(src.positions)):
        out += src.read(k)[0]
    return out


def test_an_unterminated_csv_quote_is_refused_with_its_line(tmp_path):
    f = tmp_path / "c.csv"
    quote = '"'
    f.write_text("id,text\n" + "".join(f"{i},{quote if i == 3 else ''}row {i}\n" for i in range(1, 11)))
    with pytest.raises(CommandError, match=r"c.csv:4: malformed CSV quoting \(a quote opened here is never closed"):
        open_source({"path": str(f), "column": "text"}, 100)


def test_text_after_a_closing_quote_is_refused_with_its_line(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text('id,text\n1,a\n2,"b\n3,c\n4,say "hi" there\n5,e\n')
    with pytest.raises(CommandError, match=r"c.csv:3: malformed CSV quoting"):
        open_source({"path": str(f), "column": "text"}, 100)


def test_quoted_csv_fields_keep_commas_newlines_and_quotes(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text('id,text\n1,"a, b"\n2,"two\nlines"\n3,"say ""hi"""\n')
    assert rows(open_source({"path": str(f), "column": "text"}, 2)) == ["a, b", "two\nlines", 'say "hi"']


def test_a_tsv_text_starting_with_a_quote_keeps_it_in_every_reader(tmp_path):
    from stpipe.experiments.data import DataConfig
    from stpipe.experiments.readers import iter_sts

    f = tmp_path / "c.tsv"
    f.write_text('sentence1\tsentence2\tscore\n"quoted" start\tplain\t0.5\n"open\t"x"y\t1\n')
    corpus = rows(open_source({"path": str(f), "column": "sentence1"}, 10))
    sts = [p.sentence1 for p in iter_sts(DataConfig("sts", f, "t", {"format": "tsv", "score_range": [0, 1]}))]
    assert corpus == sts == ['"quoted" start', '"open']


def test_a_line_longer_than_max_input_chars_is_refused_with_its_line(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("short\n" + "x" * 5000 + "\nshort\n")
    with pytest.raises(CommandError, match=r"c.txt:2: an input longer than max_input_chars=1000 characters"):
        open_source(str(f), 10, max_chars=1000)
    assert len(rows(open_source(str(f), 10, max_chars=5000))) == 3
    g = tmp_path / "c.csv"
    g.write_text('text\n"' + "y\n" * 600 + '"\n')  # one field of 1200 characters over 600 lines
    with pytest.raises(CommandError, match=r"c.csv:2: an input longer than max_input_chars=1000"):
        open_source(str(g), 10, max_chars=1000)


def test_jsonl_ids_of_mixed_types_are_refused_with_their_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"id": 1, "text": "a"}\n{"id": "2", "text": "b"}\n')
    with pytest.raises(CommandError, match=r"c.jsonl:2: id 'id' is a str, the ids before are ints"):
        open_source({"path": str(f), "id_column": "id"}, 10)


class LinesOnly(io.RawIOBase):
    """A pipe that can be read line by line only (``read()`` of the whole is what must not happen)."""

    def __init__(self, data: bytes):
        self.buf = io.BytesIO(data)

    def readline(self, limit: int = -1) -> bytes:
        return self.buf.readline(limit)

    def read(self, *a):
        raise AssertionError("stdin was read as a whole")


def test_stdin_is_read_line_by_line_and_bounded(monkeypatch):
    class Stdin:
        buffer = LinesOnly(b"a cat\n\na dog\n")

        def isatty(self):
            return False

    monkeypatch.setattr(sys, "stdin", Stdin())
    src = open_source("-", 10)
    assert src.read(0) == (["a cat", "a dog"], [0, 1])
    Stdin.buffer = LinesOnly(b"a cat\n" + b"z" * 10_000)
    with pytest.raises(CommandError, match=r"<stdin>:2: an input longer than max_input_chars=100"):
        open_source("-", 10, max_chars=100)
