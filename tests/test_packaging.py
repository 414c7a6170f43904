"""The installed wheel carries conf/, schemas/ and the data sets; stpipe finds them there, not only in a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds and installs the wheel

REPO = Path(__file__).resolve().parent.parent


def test_wheel_ships_conf_and_schemas_and_finds_them(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(REPO),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("stpipe-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped_conf = {str(p.relative_to(REPO / "conf")) for p in (REPO / "conf").rglob("*.yaml")}
    shipped_schemas = {str(p.relative_to(REPO / "schemas")) for p in (REPO / "schemas").rglob("*.json")}
    assert {f"stpipe/_conf/{n}" for n in shipped_conf} <= names
    assert {f"stpipe/_schemas/{n}" for n in shipped_schemas} <= names
    assert {f"stpipe/_data/stsbenchmark/{n}" for n in ("sts-dev.csv", "sts-train.csv", "LICENSE.txt")} <= names

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import stpipe.resources as r; print(r.conf_dir()); print(r.schemas_dir()); "
            "from stpipe.config.schema import combined_schema; print(len(combined_schema()['$defs'])); "
            "print(r.dataset_file('stsb-dev'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(target)}, check=True).stdout.splitlines()
    assert out[0].startswith(str(target)) and out[1].startswith(str(target))
    assert (Path(out[0]) / "model" / "minilm.yaml").is_file()
    assert int(out[2]) >= 8
    assert out[3].startswith(str(target)) and Path(out[3]).stat().st_size > 200_000  # the whole dev split
