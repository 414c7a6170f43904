"""Training data (:mod:`stpipe.training.data`): the rows and columns of a file, every bad line named."""

from __future__ import annotations

import pytest

from stpipe.errors import ConfigError
from stpipe.training.data import read_training_data


def test_a_jsonl_file_gives_its_columns_and_rows(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text('{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": "d"}\n')
    data = read_training_data({"path": str(f)})
    assert data.columns == ["anchor", "positive"] and data.rows == [("a", "b"), ("c", "d")]
    assert data.text_columns == ["anchor", "positive"] and data.label_column is None


def test_bad_lines_and_missing_files_are_problems_not_rows(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text('{"anchor": "a", "positive": "b"}\n{not json\n')
    with pytest.raises(ConfigError) as info:
        read_training_data({"path": str(f)})
    assert any(p.source == f"{f}:2" for p in info.value.problems)
    with pytest.raises(ConfigError, match="training data file"):
        read_training_data({"path": str(tmp_path / "missing.jsonl")})
