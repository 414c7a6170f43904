"""``stpipe report SWEEP_DIR [out=DIR]`` (:mod:`stpipe.commands.report`): the table printed and the files written
where asked; its reading and rendering are tested in tests/experiments/test_report.py."""

from __future__ import annotations

import json


def _sweep(root):
    for num, value in ((0, 0.25), (1, 0.75)):
        (root / str(num)).mkdir(parents=True)
        (root / str(num) / "metrics.json").write_text(json.dumps({
            "status": "ok", "main_metric": "score", "metrics": {"score": value}, "overrides": [f"lr={num}"]}))
    return root


def test_the_table_and_the_files_go_where_out_says(cli, tmp_path):
    sweep = _sweep(tmp_path / "sweep")
    rc, out, err = cli("report", str(sweep), f"out={tmp_path / 'r'}")
    assert rc == 0, err
    assert "2 points: 2 results, 0 failed" in out and "best: #1 lr=1 score=0.7500" in out
    assert (tmp_path / "r" / "report.md").is_file()
    assert "0.75" in (tmp_path / "r" / "report.csv").read_text()
    assert not (sweep / "report.md").exists()


def test_usage_mistakes_are_exit_2(cli, tmp_path):
    sweep = _sweep(tmp_path / "sweep")
    (tmp_path / "file").write_text("x")
    assert cli("report")[0] == 2
    rc, _, err = cli("report", str(sweep), "format=md")
    assert rc == 2 and "the only override is out=DIR" in err
    rc, _, err = cli("report", str(sweep), f"out={tmp_path / 'file'}")
    assert rc == 2 and "is a file, not a directory" in err
