"""The data files read as untrusted input (:mod:`stpipe.experiments.readers`): STS pairs from the stsb, CSV, TSV
and JSONL formats, normalised scores, and each malformed line a Problem naming file:line."""

from __future__ import annotations

import json

import pytest

from stpipe.errors import ConfigError
from stpipe.experiments.data import check_data, load_data_config
from stpipe.experiments.evaluators import STSEvaluator
from stpipe.experiments.readers import Pair, iter_sts, sts_format
from stpipe.resources import dataset_file

from .test_data import STSB, problems, sts


def test_shipped_stsb_dev_reads_every_pair_normalised():
    cfg = load_data_config("stsb-dev")
    pairs = list(iter_sts(cfg))
    assert len(pairs) == 1500 and all(isinstance(p, Pair) for p in pairs)
    assert pairs[0] == Pair("A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.", 1.0, 1)
    assert min(p.score for p in pairs) >= 0 and max(p.score for p in pairs) <= 1
    assert cfg.path == dataset_file("stsb-dev") and cfg.name == "stsb-dev" and check_data(cfg) == []


def test_rows_with_extra_columns_are_read(tmp_path):
    f = tmp_path / "sts.csv"
    f.write_text(STSB.format(score="2.5", s1="a b", s2="c d").rstrip("\n") + "\textra\tmore\n"
                 + STSB.format(score="5", s1="x", s2="y"))
    cfg = sts(f)
    assert sts_format(cfg) == "stsb"  # sniffed
    assert [p.score for p in iter_sts(cfg)] == [0.5, 1.0]


def test_score_out_of_range_names_file_and_line(tmp_path):
    f = tmp_path / "sts.csv"
    f.write_text(STSB.format(score="4", s1="a", s2="b") + STSB.format(score="7.5", s1="c", s2="d")
                 + STSB.format(score="x", s1="c", s2="d"))
    cfg = sts(f, format="stsb", score_range=[0, 5])
    assert problems(cfg) == [("data.score", "data.score_range", f"{f}:2"), ("data.score", "data.path", f"{f}:3")]
    with pytest.raises(ConfigError, match="outside the score range"):
        STSEvaluator(cfg)(None)  # raised before the model (None) is touched


def test_short_stsb_line(tmp_path):
    f = tmp_path / "sts.csv"
    f.write_text(STSB.format(score="4", s1="a", s2="b") * 2 + "only\tthree\tcolumns\n")
    assert problems(sts(f, format="stsb")) == [("data.line", "data.format", f"{f}:3")]


def test_csv_missing_column_is_reported_with_did_you_mean(tmp_path):
    f = tmp_path / "pairs.csv"
    f.write_text("sentence1,sentence2,scroe\na,b,0.5\nc,d,1\n")
    [p] = check_data(sts(f))
    assert (p.code, p.path_str, p.source) == ("data.columns", "data.columns.score", f"{f}:1")
    assert "did you mean 'scroe'?" in p.hint


def test_configurable_columns_tsv_and_unscaled_scores(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text("left\tright\tlabel\n\"quoted\ta\tb\t3\nc\td\t-1\n".replace("\ta\tb", " a\tb"))
    cfg = sts(f, columns={"sentence1": "left", "sentence2": "right", "score": "label"})
    assert sts_format(cfg) == "tsv"
    assert [(p.sentence1, p.score, p.line) for p in iter_sts(cfg)] == [('"quoted a', 3.0, 2), ("c", -1.0, 3)]


def test_jsonl_bad_line_and_missing_key(tmp_path):
    f = tmp_path / "pairs.jsonl"
    rows = [{"s1": "a", "s2": "b", "y": 0.1}, {"s1": "c", "s2": "d", "y": 0.9}]
    f.write_text(json.dumps(rows[0]) + "\n{not json\n" + json.dumps({"s1": "c", "y": 1}) + "\n"
                 + json.dumps(rows[1]) + "\n" + json.dumps({"s1": "c", "s2": "d", "y": True}) + "\n")
    cfg = sts(f, columns={"sentence1": "s1", "sentence2": "s2", "score": "y"})
    assert problems(cfg) == [("data.line", "data.path", f"{f}:2"), ("data.columns", "data.columns.sentence2", f"{f}:3"),
                             ("data.score", "data.path", f"{f}:5")]
