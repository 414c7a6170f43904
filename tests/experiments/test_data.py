"""Data configs and data files are checked before any model loads: each mistake is a Problem with a code, the
config path and the file:line it comes from."""

from __future__ import annotations

import json

import pytest

from stpipe.config.compose import compose
from stpipe.errors import ConfigError
from stpipe.experiments.data import check_data, data_config_from, load_data_config

STSB = "genre\tfile\t2012\t0001\t{score}\t{s1}\t{s2}\n"


def sts(path, **kw):
    return data_config_from({"evaluator": "sts", "path": str(path), **kw})


def problems(cfg):
    return [(p.code, p.path_str, p.source) for p in check_data(cfg)]


def test_missing_file_names_it_and_suggests_a_shipped_set(tmp_path):
    cfg = sts("stsb-deb")
    [(code, path, _)] = problems(cfg)
    assert (code, path) == ("data.file", "data.path")
    p = check_data(cfg)[0]
    assert "stsb-deb" in p.message and "did you mean 'stsb-dev'?" in p.hint


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
