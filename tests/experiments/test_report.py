"""``stpipe report SWEEP_DIR``: sweep directories built here as the sweep contract (SWEEP_LAYOUT) lays them out —
a 3×4 grid of pooling mode × truncate_dim, one point failed — reported to the terminal, Markdown, CSV and PNG."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stpipe.cli import main
from stpipe.commands import report as report_command
from stpipe.errors import CommandError
from stpipe.experiments import report

REPO = Path(__file__).resolve().parents[2]
POOL = "model.modules.1.pooling_mode"
DIM = "model.truncate_dim"
POOLINGS = ("mean", "cls", "max")
DIMS = ("32", "64", "128", "384")
FAILED = 5
MESSAGE = "modules[1].pooling_mode: truncate_dim 128 is not allowed with cls pooling here"


def write_job(root: Path, num: int, overrides: list[str], *, metrics: dict | None = None,
              error: tuple[str, str] | None = None, verb: str = "evaluate", main_metric: str = "spearman_cosine"):
    """One ``<root>/<num>/`` job directory: Hydra's .hydra/ files, then metrics.json or error.json."""
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text("batch_size: 32\n")
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    (job / "definition.yaml").write_text("modules: []\n")
    (job / "run.yaml").write_text("batch_size: 32\n")
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps({
            "verb": verb, "status": "ok", "main_metric": main_metric, "metrics": metrics,
            "overrides": overrides, "seconds": 10.0 + num}))
    if error is not None:
        (job / "error.json").write_text(json.dumps({
            "verb": verb, "status": "failed", "error": error[0], "message": error[1],
            "details": "Traceback (most recent call last):\n  ...\n", "overrides": overrides, "seconds": 1.5}))


def metrics_of(num: int) -> dict[str, float]:
    return {"spearman_cosine": 0.70 + num / 100 + 1 / 3000, "pearson_cosine": 0.69 + num / 99}


@pytest.fixture
def grid(tmp_path) -> Path:
    """The 3×4 sweep: every point has model=minilm (common to all); point FAILED failed."""
    root = tmp_path / "multirun" / "2026-12-01" / "10-00-00"
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"mode": "MULTIRUN"}}))
    num = 0
    for pooling in POOLINGS:
        for dim in DIMS:
            overrides = ["model=minilm", f"{POOL}={pooling}", f"{DIM}={dim}"]
            if num == FAILED:
                write_job(root, num, overrides, error=("ConfigError", MESSAGE))
            else:
                write_job(root, num, overrides, metrics=metrics_of(num))
            num += 1
    return root


@pytest.mark.slow
def test_the_command_shows_11_results_and_the_failure_and_writes_the_files(grid):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "stpipe", "report", str(grid)], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert f"sweep {grid}: 12 points: 11 results, 1 failed" in lines
    assert "common: model=minilm" in lines
    header = next(line for line in lines if line.startswith("#"))
    assert header.split() == ["#", POOL, DIM, "spearman_cosine", "pearson_cosine", "seconds", "status"]
    rows = [line for line in lines if line.split()[:1] and line.split()[0].isdigit()]
    assert len(rows) == 12 and sum(line.endswith("  ok") for line in rows) == 11
    assert rows[FAILED].split()[:3] == [str(FAILED), "cls", "64"]
    assert rows[FAILED].endswith(f"FAILED: ConfigError: {MESSAGE}"[:71] + "…")  # truncated in the terminal
    assert "best: #11 " in out.stdout and "spearman_cosine=0.8103" in out.stdout
    assert f"wrote {grid / 'report.md'}, {grid / 'report.csv'}, {grid / 'report.png'}" in lines
    assert (grid / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stderr == ""


@pytest.mark.slow
def test_the_command_imports_no_torch(grid):
    code = ("import contextlib, io, json, sys\nfrom stpipe.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['report', {str(grid)!r}]) == 0\n"
            "print(json.dumps([m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_only_the_overrides_that_differ_are_columns(grid):
    sweep = report.read_sweep(grid)
    assert [p.num for p in sweep.points] == list(range(12))
    assert sweep.columns == [POOL, DIM] and sweep.common == {"model": "minilm"}
    assert sweep.metric_names == ["spearman_cosine", "pearson_cosine"] and sweep.main_metric == "spearman_cosine"
    failed = sweep.points[FAILED]
    assert (failed.status, failed.error, failed.metrics) == ("failed", f"ConfigError: {MESSAGE}", {})
    assert sweep.points[0].overrides == {"model": "minilm", POOL: "mean", DIM: "32"}


def test_the_csv_gives_back_every_metric_and_the_whole_message(grid):
    sweep = report.read_sweep(grid)
    table = list(csv.reader(io.StringIO(report.to_csv(sweep))))
    assert table[0] == ["#", POOL, DIM, "spearman_cosine", "pearson_cosine", "seconds", "status"]
    assert len(table) == 13
    for num, row in enumerate(table[1:]):
        assert row[:3] == [str(num), POOLINGS[num // 4], DIMS[num % 4]]
        if num == FAILED:
            assert row[3:] == ["", "", "1.5", f"FAILED: ConfigError: {MESSAGE}"]
        else:
            assert {"spearman_cosine": float(row[3]), "pearson_cosine": float(row[4])} == metrics_of(num)
            assert (float(row[5]), row[6]) == (10.0 + num, "ok")


def test_the_markdown_table_has_a_row_per_point(grid):
    text = report.to_markdown(report.read_sweep(grid))
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == ("| # | model.modules.1.pooling\\_mode | model.truncate\\_dim | "
                        "spearman\\_cosine | pearson\\_cosine | seconds | status |")
    assert len(table) == 14 and all(line.count("|") == 8 for line in table)
    assert table[2 + FAILED] == ("| 5 | cls | 64 |  |  | 1.5 | FAILED: ConfigError: modules\\[1\\].pooling\\_mode: "
                                 "truncate\\_dim 128 is not allowed with cls pooling here |")
    assert "12 points: 11 results, 1 failed  \ncommon: model=minilm  \n" in text and "best: #11" in text


def test_the_chart_is_a_png(grid, tmp_path):
    path = report.plot(report.read_sweep(grid), tmp_path / "chart.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


def test_without_matplotlib_the_tables_are_written_and_a_warning_names_the_extra(grid, tmp_path, monkeypatch,
                                                                                  capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(CommandError, match=r"install stpipe\[plot\]"):
        report.plot(report.read_sweep(grid), tmp_path / "x.png")
    assert report_command.run(str(grid), [f"out={tmp_path / 'out'}"], set()) == 0
    captured = capsys.readouterr()
    assert "stpipe report: warning: no chart: matplotlib is not installed; install stpipe[plot]" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.csv", "report.md"]
    assert f"wrote {tmp_path / 'out' / 'report.md'}, {tmp_path / 'out' / 'report.csv'}\n" in captured.out
    assert not (grid / "report.md").exists()


def test_an_optuna_sweep_reports_its_best_point(grid):
    (grid / "optimization_results.yaml").write_text(yaml.safe_dump(
        {"name": "optuna", "best_params": {POOL: "max", DIM: 384}, "best_value": 0.8103}))
    sweep = report.read_sweep(grid)
    assert sweep.optuna == {"best_params": {POOL: "max", DIM: 384}, "best_value": 0.8103}
    assert f"optuna best: {POOL}=max {DIM}=384 value=0.8103" in report.render_table(sweep).splitlines()
    (grid / "optimization_results.yaml").write_text("best_value: [unclosed\n")
    assert "optuna: unreadable: optimization_results.yaml: " in report.render_table(report.read_sweep(grid))


def test_a_learning_rate_sweep_gives_one_row_per_rate(tmp_path):
    rates = ["1e-05", "3e-05", "0.0001"]
    for num, rate in enumerate(rates):
        write_job(tmp_path, num, [f"training.learning_rate={rate}"], verb="train", main_metric="loss",
                  metrics={"loss": [0.9, 0.4, 0.6][num], "epochs": 1})
    sweep = report.read_sweep(tmp_path)
    assert sweep.columns == ["training.learning_rate"] and sweep.common == {}
    header, body = report.rows(sweep)
    assert header == ["#", "training.learning_rate", "loss", "epochs", "seconds", "status"]
    assert [row[1:3] for row in body] == [["1e-05", "0.9000"], ["3e-05", "0.4000"], ["0.0001", "0.6000"]]
    assert sweep.best().num == 1  # a loss: the lowest is best
    write_job(tmp_path, 3, ["training.learning_rate=1"], verb="train", main_metric="loss", metrics={"loss": None})
    (tmp_path / "4").mkdir()
    (tmp_path / "4" / "metrics.json").write_text('{"main_metric": "loss", "metrics": {"loss": NaN}}')
    sweep = report.read_sweep(tmp_path)
    assert sweep.best().num == 1 and report.plot(sweep, tmp_path / "c.png").is_file()  # null, NaN: no rank


def test_malformed_files_make_one_point_unreadable_and_the_others_are_reported(grid, capsys):
    (grid / "3" / "metrics.json").write_text("{not json")
    (grid / "5" / "error.json").write_text("[1, 2]")
    (grid / "7" / "metrics.json").write_text(json.dumps({"metrics": {"spearman_cosine": "high"}}))
    (grid / "8" / "metrics.json").write_bytes(b"\xff\xfe")
    assert main(["report", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "12 points: 8 results, 0 failed, 4 unreadable" in out
    rows = {int(line.split()[0]): line for line in out.splitlines() if line.split()[:1] and line.split()[0].isdigit()}
    assert rows[3].endswith("unreadable: metrics.json: Expecting property name enclosed in double quotes: line 1 "
                            "column 2 (char 1)"[:71] + "…")
    assert rows[5].endswith("unreadable: error.json: expected a JSON object, found list")
    assert "unreadable: metrics.json: metric 'spearman_cosine' is 'high'" in rows[7]
    assert report.read_sweep(grid).points[7].error == ("unreadable: metrics.json: metric 'spearman_cosine' is "
                                                       "'high', not a number")
    assert "unreadable: metrics.json: " in rows[8] and rows[9].endswith("ok")
    assert "Traceback" not in out


def test_a_job_without_results_is_not_run_or_still_running(grid):
    (grid / "11" / "metrics.json").unlink()
    sweep = report.read_sweep(grid)
    assert sweep.points[11].status == "missing" and sweep.points[11].overrides[POOL] == "max"
    text = report.render_table(sweep)
    assert "10 results, 1 failed, 1 not run / still running" in text
    assert text.splitlines()[-2].endswith("not run / still running") and "best: #10 " in text


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: p.write_text("x"), lambda p: None],
                         ids=["no job dirs", "a file", "absent"])
def test_a_directory_that_is_not_a_sweep_is_refused(tmp_path, capsys, make):
    target = tmp_path / "d"
    make(target)
    if target.is_dir():
        (target / "runs").mkdir()
    assert main(["report", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stpipe report: ") and "sweep directory" in err and "Traceback" not in err


def test_report_without_a_directory_or_with_a_stray_override_is_a_usage_error(grid, capsys):
    assert main(["report"]) == 2
    assert "usage: stpipe report SWEEP_DIR" in capsys.readouterr().err
    assert main(["report", str(grid), "batch_size=3"]) == 2
    assert "the only override is out=DIR (got 'batch_size=3')" in capsys.readouterr().err
    assert main(["report", str(grid), "-m"]) == 2
    assert "no options here (got --multirun)" in capsys.readouterr().err


def test_values_from_files_cannot_inject_markup(tmp_path):
    hostile = "x | y\n# title <script>alert(1)</script> [a](http://e) $\\frac{ \x1b[31m"
    write_job(tmp_path, 0, [f"name={hostile}"], metrics={"m": 1.0}, main_metric="m")
    write_job(tmp_path, 1, ["name=plain"], error=("LoadError", "bad | file\nsecond line"))
    sweep = report.read_sweep(tmp_path)
    md = report.to_markdown(sweep)
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 4
    for line in table:  # every row keeps its cells: no unescaped '|' from a value
        assert line.replace("\\|", "").count("|") == 6, line
    assert "<script>" not in md and "](" not in md.replace("\\](", "") and "\x1b" not in md
    assert "FAILED: LoadError: bad \\| file second line" in md
    term = report.render_table(sweep)
    assert "\x1b" not in term and "\\x1b[31m" in term
    assert list(csv.reader(io.StringIO(report.to_csv(sweep))))[1][1] == hostile  # CSV: the value itself, quoted
    assert report.plot(sweep, tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"  # a '$' label is not mathtext


def test_csv_cells_cannot_run_as_spreadsheet_formulas(tmp_path):
    formulas = ['=HYPERLINK("http://e","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1"]
    for num, value in enumerate(formulas):
        write_job(tmp_path, num, [f"name={value}"], metrics={"m": -0.5}, main_metric="m")
    table = list(csv.reader(io.StringIO(report.to_csv(report.read_sweep(tmp_path)))))
    column, metric = table[0].index("name"), table[0].index("m")
    assert [row[column] for row in table[1:]] == ["'" + v for v in formulas]
    assert all(float(row[metric]) == -0.5 for row in table[1:])  # a negative number is not a formula


def test_the_best_line_cannot_be_split_by_a_newline_or_control_characters_in_a_value(tmp_path):
    hostile = "x\nbest: #7 forged=1 m=99\r\x1b[2K"
    write_job(tmp_path, 0, [f"name={hostile}"], metrics={"m": 2.0}, main_metric="m")
    write_job(tmp_path, 1, ["name=plain"], metrics={"m": 1.0}, main_metric="m")
    sweep = report.read_sweep(tmp_path)
    assert report.best_line(sweep).count("\n") == 0 and "\\nbest: #7" in report.best_line(sweep)
    for text in (report.render_table(sweep), report.to_markdown(sweep)):
        best = [line for line in text.splitlines() if line.startswith("best:")]
        assert len(best) == 1 and best[0].startswith("best: #0") and "\x1b" not in text and "\r" not in text
