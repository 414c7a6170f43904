"""Tiny training fixtures: a model definition on the tiny BERT, a few STS-B train/dev lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from stpipe.resources import dataset_file


def _head(name: str, n: int, target: Path) -> Path:
    lines = dataset_file(name).read_text(encoding="utf-8").splitlines()[:n]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


@pytest.fixture()
def tiny_setup(tmp_path, tiny_bert_dir) -> dict[str, Path]:
    """``model.yaml`` (tiny BERT + mean pooling), ``train.csv`` (24 STS-B train lines), ``dev.yaml`` (an sts
    data set of 16 STS-B dev lines)."""
    model = tmp_path / "model.yaml"
    model.write_text(f"modules:\n  - type: Transformer\n    model_name_or_path: {tiny_bert_dir}\n"
                     "  - type: Pooling\n    pooling_mode: mean\n", encoding="utf-8")
    train = _head("stsb-train", 24, tmp_path / "train.csv")
    _head("stsb-dev", 16, tmp_path / "dev.csv")
    dev = tmp_path / "dev.yaml"
    dev.write_text("evaluator: sts\npath: dev.csv\nformat: stsb\n", encoding="utf-8")
    return {"dir": tmp_path, "model": model, "train": train, "dev": dev}


def train_args(s: dict[str, Path], *extra: str) -> list[str]:
    """The arguments of a small ``stpipe train`` run on the tiny setup."""
    return [str(s["model"]), "data=stsb-train", f"data.path={s['train']}", "loss=cosent",
            "training.batch_size=4", f"training.eval_data={s['dev']}", "training.logging_steps=1", *extra]
