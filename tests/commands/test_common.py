"""What the verbs share (:mod:`stpipe.commands.common`): the run settings are checked with the composition — a bad
one exits 2 naming the override before anything loads or is written — and a sweep checks every point first."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args, needle", [
    (("encode", "batch_size=abc"), "[schema.type] batch_size: expected integer, found string"),
    (("encode", "truncate_dim=abc"), "[schema.type] truncate_dim"),
    (("encode", "truncate_dim=0"), "[schema.range] truncate_dim"),
    (("encode", "prompt=3"), "[schema.type] prompt"),
    (("encode", "device=banana"), "[schema.pattern] device"),
    (("encode", "normalize_embeddings=maybe"), "[schema.type] normalize_embeddings"),
    (("encode", "precision=int4"), "did you mean 'int8'?"),
    (("encode", "output=x.csv"), "[run.output] output"),
    (("encode", "inputs=missing.txt"), "[run.inputs] inputs: inputs file 'missing.txt' does not exist"),
    (("encode", "device=cuda"), "[run.device] device: device 'cuda' is not available"),
    (("export", "device=cuda:0", "out=x"), "[run.device] device"),
    (("validate", "model.modules.0.max_seq_length=100000"), "[graph.max-seq-length] modules[0].max_seq_length"),
    (("validate", "model.modules.1.pooling_mode=mean,cls"), "run a sweep with -m/--multirun"),
])
def test_bad_run_settings_exit_2_before_anything_loads(cli, monkeypatch, tmp_path, args, needle):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a CPU-only machine
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(*args)
    assert rc == 2, (out, err)
    assert needle in err and "sweep_points" not in err
    assert f"at override `{args[1]}`" in err
    assert list(tmp_path.iterdir()) == []  # nothing written, no model built

def test_multirun_checks_run_settings_of_every_point_first(cli, tmp_path):
    inputs_file = tmp_path / "texts.txt"
    inputs_file.write_text("a cat\nthe dog\n")
    out = tmp_path / "e.npy"
    rc, stdout, err = cli("encode", "-m", f"inputs={inputs_file},{tmp_path / 'nope.txt'}", f"output={out}",
                          "batch_size=8,x")
    assert rc == 2
    assert stdout.count("ok    sweep point") == 1 and err.count("FAIL  sweep point") == 3
    assert "[run.inputs] inputs" in err and "[schema.type] batch_size" in err and "no job was started" in err
    assert not list(tmp_path.glob("e*.npy"))
