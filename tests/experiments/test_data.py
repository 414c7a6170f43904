"""Data configs and data files are checked before any model loads: each mistake is a Problem with a code, the
config path and the file:line it comes from."""

from __future__ import annotations

import json

import pytest

from stpipe.config.compose import compose
from stpipe.errors import ConfigError
from stpipe.experiments.data import check_data, data_config_from, load_data_config
from stpipe.experiments.evaluators import STSEvaluator
from stpipe.experiments.readers import Pair, iter_sts, sts_format
from stpipe.resources import dataset_file

STSB = "genre\tfile\t2012\t0001\t{score}\t{s1}\t{s2}\n"


def sts(path, **kw):
    return data_config_from({"evaluator": "sts", "path": str(path), **kw})


def problems(cfg):
    return [(p.code, p.path_str, p.source) for p in check_data(cfg)]


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


def test_missing_file_names_it_and_suggests_a_shipped_set(tmp_path):
    cfg = sts("stsb-deb")
    [(code, path, _)] = problems(cfg)
    assert (code, path) == ("data.file", "data.path")
    p = check_data(cfg)[0]
    assert "stsb-deb" in p.message and "did you mean 'stsb-dev'?" in p.hint


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


def test_too_few_pairs(tmp_path):
    f = tmp_path / "one.jsonl"
    f.write_text(json.dumps({"sentence1": "a", "sentence2": "b", "score": 1}) + "\n")
    assert [c for c, *_ in problems(sts(f))] == ["data.empty"]


def test_bad_data_config_lists_every_problem():
    with pytest.raises(ConfigError) as exc:
        data_config_from({"evaluator": "sts", "path": "stsb-dev", "fromat": "stsb", "score_range": [0],
                          "main_similarity": "cosin"})
    assert sorted((p.code, p.path_str) for p in exc.value.problems) == [
        ("schema.empty", "data.score_range"), ("schema.enum", "data.main_similarity"),
        ("schema.unknown-key", "data.fromat")]
    assert exc.value.title == "invalid data set"
    with pytest.raises(ConfigError) as exc:
        data_config_from({"path": "x"})  # a file that does not tell its evaluator
    assert [p.code for p in exc.value.problems] == ["data.evaluator"]
    with pytest.raises(ConfigError, match="a data set is a mapping"):
        data_config_from(None)


def test_problems_carry_the_yaml_line_of_the_key(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("evaluator: sts\npath: stsb-dev\nsplit: test\n")
    with pytest.raises(ConfigError) as exc:
        load_data_config(f)
    [p] = exc.value.problems
    assert (p.code, p.path_str, p.source) == ("schema.unknown-key", "data.split", f"{f}:3:1")
    with pytest.raises(ConfigError, match="did you mean 'stsb-dev'"):
        load_data_config("stsb-deb")


def test_the_composed_data_node_is_a_data_config():
    """`data=stsb-dev` composes (conf/config.yaml's `data` group) into the node data_config_from takes."""
    run = compose(None, ["data=stsb-dev", "data.score_range=[0,10]"]).run
    cfg = data_config_from(run["data"])
    assert cfg.evaluator == "sts" and cfg.get("score_range") == [0, 10]
    assert "data" not in compose(None).run


def write_beir(d, *, qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\n"):
    (d / "qrels").mkdir(parents=True)
    (d / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "T", "text": "x"}) + "\n")
    (d / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "q"}) + "\n")
    (d / "qrels" / "test.tsv").write_text(qrels)
    return data_config_from({"evaluator": "retrieval", "path": str(d)})


def test_beir_checks(tmp_path):
    assert check_data(write_beir(tmp_path / "ok")) == []
    cfg = write_beir(tmp_path / "bad", qrels="query-id\tcorpus-id\tscore\nq1\td1\tone\nq1\n")
    f = tmp_path / "bad" / "qrels" / "test.tsv"
    assert problems(cfg) == [("data.score", "data.path", f"{f}:2"), ("data.line", "data.path", f"{f}:3")]
    cfg = data_config_from({"evaluator": "retrieval", "path": str(tmp_path / "ok"), "split": "dev"})
    [p] = check_data(cfg)
    assert (p.code, p.path_str, p.hint) == ("data.file", "data.split", "splits here: test")
    cfg = write_beir(tmp_path / "none", qrels="q\tc\ts\nq1\td1\t0\n")
    assert [c for c, *_ in problems(cfg)] == ["data.empty"]
    (tmp_path / "ok" / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n')
    cfg = data_config_from({"evaluator": "retrieval", "path": str(tmp_path / "ok")})
    assert problems(cfg) == [("data.duplicate-id", "data.path", f"{tmp_path / 'ok' / 'corpus.jsonl'}:2")]


def test_the_evaluator_follows_from_the_files_layout(tmp_path):
    from stpipe.experiments.data import data_config_from, infer_evaluator

    (tmp_path / "p.csv").write_text("sentence1,sentence2,score\na,b,1\n")
    (tmp_path / "p.tsv").write_text("sentence1\tsentence2\tlabel\na\tb\t1\n")
    (tmp_path / "r.jsonl").write_text('{"query": "q", "positive": ["a"], "negative": ["b"]}\n')
    (tmp_path / "s.jsonl").write_text('\n{"sentence1": "a", "sentence2": "b", "score": 1}\n')
    (tmp_path / "beir").mkdir()
    (tmp_path / "beir" / "corpus.jsonl").write_text("")
    (tmp_path / "x.csv").write_text("a,b\n")
    got = {n: infer_evaluator(tmp_path / n) for n in ("p.csv", "p.tsv", "r.jsonl", "s.jsonl", "beir", "x.csv")}
    assert got == {"p.csv": "sts", "p.tsv": "sts", "r.jsonl": "reranking", "s.jsonl": "sts", "beir": "retrieval",
                   "x.csv": None}
    cfg = data_config_from({"path": str(tmp_path / "p.csv")})
    assert (cfg.evaluator, cfg.name) == ("sts", "p.csv")
    with pytest.raises(ConfigError) as e:
        data_config_from({"path": str(tmp_path / "x.csv")})
    assert [p.code for p in e.value.problems] == ["data.evaluator"] and "data.evaluator=sts" in e.value.problems[0].hint
