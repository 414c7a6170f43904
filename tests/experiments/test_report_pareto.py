"""The speed–quality view of `stpipe report` (stpipe.experiments.report_pareto): the Pareto front, the fastest point
within a quality budget (`best=fastest within=X`) and pareto.png, on sweep directories written here."""

from __future__ import annotations

import pytest

from stpipe.cli import main
from stpipe.experiments import report, report_pareto
from tests.experiments.test_report import write_job

# backend, quantize, spearman_cosine, throughput — hand-made: #4 is best quality, #3 the fastest within 0.01
POINTS = [("onnx", "null", 0.8670, 420.0), ("onnx", "int8", 0.8660, 700.0), ("openvino", "null", 0.8671, 450.0),
          ("onnx", "int8-static", 0.8666, 900.0), ("torch", "null", 0.8673, 400.0),
          ("openvino", "int8", 0.8400, 1200.0), ("openvino", "int8-static", 0.8500, 800.0)]


@pytest.fixture
def speed_sweep(tmp_path):
    root = tmp_path / "sweep"
    root.mkdir()
    for num, (backend, quantize, rho, speed) in enumerate(POINTS):
        write_job(root, num, [f"backend={backend}", f"quantize={quantize}"],
                  metrics={"spearman_cosine": rho, "throughput": speed, "model_size_mb": 90.0})
    return root


def test_the_front_holds_exactly_the_undominated_points(speed_sweep):
    sweep = report.read_sweep(speed_sweep)
    assert [p.num for p in report_pareto.front(sweep)] == [5, 3, 2, 4]  # fastest first; #6, #1, #0 are dominated


@pytest.mark.parametrize("within, chosen", [(0.01, 3), (0.0005, 2), (0.0, 4), (0.1, 5)])
def test_fastest_within_the_quality_budget(speed_sweep, within, chosen):
    assert report_pareto.fastest_within(report.read_sweep(speed_sweep), within).num == chosen


def test_the_command_names_the_deployment_and_draws_the_chart(speed_sweep, capsys):
    assert main(["report", str(speed_sweep), "best=fastest", "within=0.01"]) == 0
    out = capsys.readouterr().out
    assert "deploy: #3 backend=onnx quantize=int8-static" in out
    assert "the fastest point within 0.01 of the best spearman_cosine (0.8673, #4)" in out
    assert (speed_sweep / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "deploy: #3" in (speed_sweep / "report.md").read_text()


@pytest.mark.parametrize("args, text", [
    (["best=slowest"], "the one choice is best=fastest"),
    (["best=fastest", "within=-1"], "within=-1: give a quality budget"),
    (["within=0.01"], "add best=fastest"),
    (["colour=red"], "the only override is out=DIR (got 'colour=red'); usage: stpipe report SWEEP_DIR [out=DIR] "
                     "[best=fastest"),
])
def test_bad_report_settings_exit_2(speed_sweep, capsys, args, text):
    assert main(["report", str(speed_sweep), *args]) == 2
    assert text in capsys.readouterr().err


def test_best_fastest_needs_a_throughput(tmp_path, capsys):
    root = tmp_path / "s"
    root.mkdir()
    write_job(root, 0, ["batch_size=8"], metrics={"spearman_cosine": 0.8})
    assert main(["report", str(root), "best=fastest"]) == 2
    assert "needs points with a throughput metric" in capsys.readouterr().err
    assert main(["report", str(root)]) == 0 and not (root / "pareto.png").exists()  # no speed: no front, no chart
