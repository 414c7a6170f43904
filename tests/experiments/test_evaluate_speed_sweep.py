"""`stpipe evaluate -m` over backend × quantize × threads on a tiny model, as a user runs it (a subprocess), then
`stpipe report … best=fastest`: every point reports quality, throughput and size; the exports are made in the
jobs and cached by their settings (threads is not an export setting: one export serves both thread counts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stpipe.resources import dataset_file

pytestmark = pytest.mark.slow


def test_a_speed_quality_sweep_picks_a_deployment(tiny_bert_dir, tmp_path):
    model = tmp_path / "tiny.yaml"
    model.write_text(yaml.safe_dump({"name": "tiny", "modules": [
        {"type": "Transformer", "model_name_or_path": str(tiny_bert_dir), "max_seq_length": 32},
        {"type": "Pooling", "pooling_mode": "mean"}, {"type": "Normalize"}]}))
    data = tmp_path / "sts.csv"
    data.write_text("".join(dataset_file("stsb-dev").read_text(encoding="utf-8").splitlines(True)[:24]))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "STPIPE_EXPORT_CACHE": str(tmp_path / "cache")}
    sweep = tmp_path / "sweep"
    r = subprocess.run([sys.executable, "-m", "stpipe", "evaluate", "-m", str(model), "data=stsb-dev",
                        f"data.path={data}", "backend=onnx,openvino", "quantize=null,int8", "threads=1,2",
                        f"hydra.sweep.dir={sweep}"], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    records = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in range(8)]
    exports = [json.loads((sweep / str(i) / "export.json").read_text()) for i in range(8)]
    for rec, exp in zip(records, exports, strict=True):
        assert rec["metrics"]["throughput"] > 0 and rec["metrics"]["model_size_mb"] > 0
        assert Path(exp["export_dir"]).parent == tmp_path / "cache"
    assert sum(not exp["export_reused"] for exp in exports) == 4  # backend × quantize; threads=2 reuses threads=1's
    assert len({exp["export_dir"] for exp in exports}) == 4
    onnx_fp32 = [rec for rec in records if {"backend=onnx", "quantize=null"} <= set(rec["overrides"])]
    assert len(onnx_fp32) == 2
    assert len({rec["metrics"]["spearman_cosine"] for rec in onnx_fp32}) == 1  # the same export, the same quality

    r = subprocess.run([sys.executable, "-m", "stpipe", "report", str(sweep), "best=fastest", "within=0.01"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "speed–quality front" in r.stdout and "deploy: #" in r.stdout
    assert (sweep / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    table = (sweep / "report.csv").read_text()
    assert "throughput" in table and "model_size_mb" in table
