"""`stpipe evaluate` as a user runs it (a subprocess): the metrics of sentence-transformers' own evaluator, the run's
record (metrics.json, definition.yaml, run.yaml), the data set checked before any weight loads, and a sweep of
evaluations that `stpipe report` tabulates."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stpipe.resources import dataset_file

pytestmark = pytest.mark.slow


def stpipe(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "stpipe", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def read_stsb(path: Path) -> tuple[list[str], list[str], list[float]]:
    """The STS Benchmark layout read independently of stpipe: tab-separated, no quoting, score (0–5) in column 5."""
    s1, s2, scores = [], [], []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            scores.append(float(row[4]) / 5.0)
            s1.append(row[5])
            s2.append(row[6])
    return s1, s2, scores


def test_evaluate_minilm_on_stsb_dev_equals_sentence_transformers(tmp_path, minilm_dir):
    r = stpipe(tmp_path, "evaluate", "model=minilm", "data=stsb-dev", "out=run")
    assert r.returncode == 0, r.stderr
    assert "spearman_cosine" in r.stdout
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["main_metric"] == "spearman_cosine" and record["n"] == 1500
    definition = yaml.safe_load((tmp_path / "run" / "definition.yaml").read_text())
    assert [m["type"] for m in definition["modules"]] == ["Transformer", "Pooling", "Normalize"]
    assert yaml.safe_load((tmp_path / "run" / "run.yaml").read_text())["data"]["path"] == "stsb-dev"

    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    s1, s2, scores = read_stsb(dataset_file("stsb-dev"))
    model = SentenceTransformer(str(minilm_dir), device="cpu")
    fns = ["cosine", "dot", "euclidean", "manhattan"]
    oracle = EmbeddingSimilarityEvaluator(s1, s2, scores, name="dev", similarity_fn_names=fns)(model)
    for fn in fns:
        for stat in ("pearson", "spearman"):
            assert abs(record["metrics"][f"{stat}_{fn}"] - oracle[f"dev_{stat}_{fn}"]) <= 1e-4, (stat, fn)


def test_a_bad_data_file_fails_before_the_model_loads(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sentence1": "a", "sentence2": "b", "score": 0.5}\n{"sentence1": "c", "score": 0.1}\n')
    # a model that cannot load: the data error must come first, so nothing tried to load it
    (tmp_path / "m.yaml").write_text("modules:\n  - type: Transformer\n    model_name_or_path: all-MiniLM-L6-v2\n"
                                     "  - type: Pooling\n")
    r = stpipe(tmp_path, "evaluate", "m.yaml", "data=stsb-dev", f"data.path={bad}", "data.format=jsonl")
    assert r.returncode == 2
    assert f"{bad}:2" in r.stderr and "sentence2" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_sweep_of_evaluations_is_reported(tmp_path, tiny_bert_dir):
    (tmp_path / "tiny.yaml").write_text(f"name: tiny\nmodules:\n  - type: Transformer\n    model_name_or_path: "
                                        f"{tiny_bert_dir}\n  - type: Pooling\n    pooling_mode: mean\n")
    lines = dataset_file("stsb-dev").read_text(encoding="utf-8").splitlines()[:40]
    (tmp_path / "small.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = stpipe(tmp_path, "evaluate", "tiny.yaml", "-m", "model.modules.1.pooling_mode=mean,cls", "truncate_dim=8,32",
               "data.path=small.csv", "hydra.sweep.dir=sweep")  # the STS-B layout, told by its content
    assert r.returncode == 0, r.stderr
    blocks = [ln for ln in r.stdout.splitlines() if "spearman_cosine" in ln or " on small.csv:" in ln]
    assert len(blocks) == 8 and all(ln[:3] in ("[0]", "[1]", "[2]", "[3]") for ln in blocks), r.stdout  # labelled
    main = {}
    for job in sorted((tmp_path / "sweep").glob("[0-9]*")):
        record = json.loads((job / "metrics.json").read_text())
        assert record["main_metric"] == "spearman_cosine"
        main[frozenset(o for o in record["overrides"] if "pooling_mode" in o or "truncate_dim" in o)] = \
            record["metrics"]["spearman_cosine"]
    assert len(main) == 4
    for pooling in ("mean", "cls"):  # truncate_dim (a run setting) reaches the evaluation: 8 of 32 dims differ
        point = f"model.modules.1.pooling_mode={pooling}"
        assert main[frozenset({point, "truncate_dim=8"})] != main[frozenset({point, "truncate_dim=32"})]
    r = stpipe(tmp_path, "report", "sweep")
    assert r.returncode == 0, r.stderr
    assert "4 points: 4 results, 0 failed" in r.stdout and "main metric: spearman_cosine" in r.stdout
    assert all(f"{v:.4f}" in r.stdout for v in main.values())
    assert (tmp_path / "sweep" / "report.md").is_file() and (tmp_path / "sweep" / "report.csv").is_file()
    assert (tmp_path / "sweep" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the main metric's chart


PAIRS = ("sentence1,sentence2,score\nA man plays a guitar.,A man is playing guitar.,4.8\n"
         "A cat sleeps.,The stock market fell.,0.2\nA woman slices an onion.,Someone cuts an onion.,4.0\n"
         "Kids play football.,Children are playing soccer.,4.5\n")


def test_a_users_csv_alone_is_evaluated_and_named_after_the_file(tmp_path, minilm_dir):
    (tmp_path / "pairs.csv").write_text(PAIRS)
    r = stpipe(tmp_path, "evaluate", "model=minilm", "data.path=pairs.csv", "out=run")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "all-MiniLM-L6-v2 on pairs.csv:" in r.stdout, r.stdout
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["data"] == "pairs.csv" and m["main_metric"] == "spearman_cosine"
    assert -1 <= m["metrics"]["spearman_cosine"] <= 1
    # not a terminal and no show_progress_bar: no bars in the log (they were unlabelled "Batches" with \r)
    assert "\r" not in r.stderr and "Batches" not in r.stderr and "batches" not in r.stderr, r.stderr[-2000:]
    # a shipped set's layout and name do not stick to the user's file
    r = stpipe(tmp_path, "evaluate", "model=minilm", "data=stsb-dev", "data.path=pairs.csv", "out=run2",
               "show_progress_bar=true")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((tmp_path / "run2" / "metrics.json").read_text())["data"] == "pairs.csv"
    assert "encode batches" in r.stderr  # asked for: shown, and saying what it counts
