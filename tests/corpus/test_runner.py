"""``workers=N`` is capped by the machine unless max_workers says otherwise (issue 19, item 14)."""

from __future__ import annotations

import stpipe.hardware as hardware
from stpipe.corpus.runner import settings


def test_workers_are_capped_by_the_machine_with_a_message(monkeypatch):
    monkeypatch.setattr(hardware, "available_cpus", lambda: 8)
    monkeypatch.setattr(hardware, "available_memory", lambda: 3 << 30)  # 3 workers of 1 GiB
    seen: list[str] = []
    assert settings({"workers": 1000}, seen.append)["workers"] == 3
    assert "workers=1000 is more than this machine can run (8 CPUs, 3.0 GiB" in seen[0]
    assert "max_workers=N" in seen[0]
    assert settings({"workers": 2}, seen.append)["workers"] == 2 and len(seen) == 1


def test_an_explicit_max_workers_overrides_the_machine_cap(monkeypatch):
    monkeypatch.setattr(hardware, "available_cpus", lambda: 2)
    seen: list[str] = []
    assert settings({"workers": 6, "max_workers": 6}, seen.append)["workers"] == 6 and not seen
    assert settings({"workers": 9, "max_workers": 6}, seen.append)["workers"] == 6 and "max_workers=6" in seen[0]
    assert settings({"workers": 50, "engine": "ray"}, seen.append)["workers"] == 50  # actors run on the cluster
