"""The ``stpipe`` command, run as a user would: a subprocess, checked by exit code, stdout/stderr and files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
TEXTS = ["A man is playing a guitar.", "What is the capital of France?", "Paris is the capital of France.",
         "The weather in New York is rainy today, and the forecast says it will stay that way all week."]


def stpipe(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "stpipe", *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=cwd or REPO, timeout=300)


@pytest.fixture(scope="module")
def st_minilm(minilm_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu")


@pytest.fixture()
def inputs_file(tmp_path) -> Path:
    f = tmp_path / "texts.txt"
    f.write_text("\n".join(TEXTS) + "\n")
    return f


@pytest.mark.slow
def test_encode_default_model_matches_sentence_transformers(tmp_path, inputs_file, st_minilm):
    out = tmp_path / "emb.npy"
    r = stpipe("encode", "model=minilm", f"inputs={inputs_file}", f"output={out}")
    assert r.returncode == 0, r.stderr
    assert "encoded 4 inputs" in r.stdout
    emb = np.load(out)
    assert emb.shape == (4, 384) and emb.dtype == np.float32
    expected = st_minilm.encode(TEXTS, convert_to_numpy=True)
    assert np.abs(emb - expected).max() <= 1e-5


@pytest.mark.slow
def test_encode_override_pooling_mode_reaches_the_model(tmp_path, inputs_file, minilm_dir):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    out = tmp_path / "cls.npy"
    r = stpipe("encode", "model=minilm", "model.modules.1.pooling_mode=cls", f"inputs={inputs_file}", f"output={out}")
    assert r.returncode == 0, r.stderr
    tr = Transformer(str(minilm_dir), max_seq_length=256)
    st = SentenceTransformer(modules=[tr, Pooling(384, "cls"), Normalize()], device="cpu")
    assert np.abs(np.load(out) - st.encode(TEXTS)).max() <= 1e-5


@pytest.mark.slow
def test_encode_reads_stdin_and_writes_jsonl(tmp_path, st_minilm):
    out = tmp_path / "emb.jsonl"
    r = stpipe("encode", f"output={out}", stdin="\n".join(TEXTS[:2]) + "\n")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and len(rows[0]) == 384
    assert np.abs(np.array(rows, dtype=np.float32) - st_minilm.encode(TEXTS[:2])).max() <= 1e-5


@pytest.mark.slow
def test_validate_reports_every_problem_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "modules:\n"
        "  - type: Transformer\n"
        "    model_name_or_path: all-MiniLM-L6-v2\n"
        "  - type: Pooling\n"
        "    pooling_mode: meen\n"
        "    pooling_mod: cls\n"
        "  - type: Normalize\n"
    )
    r = stpipe("validate", str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    assert "modules[1].pooling_mode" in r.stderr and "did you mean 'mean'?" in r.stderr
    assert "modules[1].pooling_mod:" in r.stderr and "did you mean 'pooling_mode'?" in r.stderr
    assert f"{bad}:5:" in r.stderr  # the line of the misspelt mode


@pytest.mark.slow
def test_validate_ok_and_explain():
    r = stpipe("validate", "model=minilm", "--explain")
    assert r.returncode == 0, r.stderr
    assert "ok:" in r.stdout and "Transformer" in r.stdout and "transformer.py" in r.stdout


@pytest.mark.slow
def test_export_then_sentence_transformers_loads_it(tmp_path, st_minilm):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "exported"
    r = stpipe("export", "model=minilm", f"out={out}")
    assert r.returncode == 0, r.stderr
    st = SentenceTransformer(str(out), device="cpu")
    assert np.abs(st.encode(TEXTS) - st_minilm.encode(TEXTS)).max() <= 1e-5


@pytest.mark.slow
def test_import_prints_yaml_that_rebuilds_the_model(tmp_path, minilm_dir, st_minilm):
    r = stpipe("import", str(minilm_dir))
    assert r.returncode == 0, r.stderr
    yml = tmp_path / "imported.yaml"
    yml.write_text(r.stdout)
    out = tmp_path / "e.npy"
    f = tmp_path / "t.txt"
    f.write_text("\n".join(TEXTS))
    r = stpipe("encode", str(yml), f"inputs={f}", f"output={out}")
    assert r.returncode == 0, r.stderr
    assert np.abs(np.load(out) - st_minilm.encode(TEXTS)).max() <= 1e-5


@pytest.mark.slow
def test_schema_prints_json_schema():
    r = stpipe("schema")
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    assert "2020-12" in schema["$schema"]


@pytest.mark.slow
@pytest.mark.parametrize("args, needle", [
    (("encode", "model=minilm", "inputs=/nonexistent/file.txt"), "does not exist"),
    (("frobnicate",), "unknown verb"),
    (("encode", "model=minlm", "inputs=x"), "minilm"),
    (("validate", "model.modules.1.pooling_mode=meen"), "override"),
])
def test_bad_invocations_exit_2_with_a_message(args, needle):
    r = stpipe(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_multirun_validates_every_point_before_the_first_job(tmp_path, inputs_file):
    out = tmp_path / "sweep" / "e.npy"
    out.parent.mkdir()  # stpipe creates no directory the user did not name
    r = stpipe("encode", "model=minilm", "model.modules.1.pooling_mode=mean,meen,cls", f"inputs={inputs_file}",
               f"output={out}", "-m")
    assert r.returncode == 2, r.stdout
    assert "FAIL  sweep point 1" in r.stderr and "model.modules.1.pooling_mode=meen" in r.stderr
    assert "did you mean 'mean'?" in r.stderr and "no job was started" in r.stderr
    assert not any(out.parent.iterdir())  # the valid points did not run either

    r = stpipe("encode", "model=minilm", "model.modules.1.pooling_mode=mean,cls", f"inputs={inputs_file}",
               f"output={out}", "-m", f"hydra.sweep.dir={tmp_path / 'runs'}")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "runs" / "1" / "metrics.json").is_file()  # Hydra's multirun layout, one dir per point
    mean, cls = np.load(out.with_name("e.0.npy")), np.load(out.with_name("e.1.npy"))  # an absolute output= numbered
    assert mean.shape == cls.shape == (4, 384) and np.abs(mean - cls).max() > 1e-3


@pytest.mark.slow
def test_invalid_yaml_names_file_line_and_column(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("modules:\n  - type: Pooling\n    pooling_mode: [mean\n")
    r = stpipe("validate", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "yaml.syntax" in r.stderr and f"{bad}:" in r.stderr


@pytest.mark.slow
def test_wrong_dtype_name_is_a_config_error(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("modules:\n  - type: Transformer\n    model_name_or_path: all-MiniLM-L6-v2\n"
                 "    model_kwargs: {torch_dtype: bfloat61}\n  - type: Pooling\n")
    r = stpipe("validate", str(f))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "modules[0].model_kwargs.torch_dtype" in r.stderr and "bfloat16" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("damage, needle", [
    ("truncate", "model.safetensors"),
    ("modules_json", "modules.json"),
    ("pickle", "pytorch_model.bin"),
])
def test_damaged_saved_model_gives_a_clear_error_naming_the_file(tmp_path, minilm_dir, inputs_file, damage, needle):
    import shutil

    d = tmp_path / "model"
    shutil.copytree(minilm_dir, d)
    if damage == "truncate":
        w = d / "model.safetensors"
        w.write_bytes(w.read_bytes()[: 1 << 20])
    elif damage == "modules_json":
        (d / "modules.json").write_text('[{"idx": 0, "path": "", "type": ')
    else:
        import torch
        from safetensors.torch import load_file

        torch.save(load_file(str(d / "model.safetensors")), d / "pytorch_model.bin")
        (d / "model.safetensors").unlink()
    r = stpipe("encode", str(d), f"inputs={inputs_file}", f"output={tmp_path / 'e.npy'}")
    assert r.returncode == 2, r.stdout
    assert "Traceback" not in r.stderr and needle in r.stderr
    assert not (tmp_path / "e.npy").exists()
    if damage == "pickle":  # an explicit opt-in loads it (torch.load with weights_only) and gives the same model
        r = stpipe("encode", str(d), "allow_pickle=true", f"inputs={inputs_file}", f"output={tmp_path / 'e.npy'}")
        assert r.returncode == 0, r.stderr
        from sentence_transformers import SentenceTransformer

        expected = SentenceTransformer(str(minilm_dir), device="cpu").encode(TEXTS)
        assert np.abs(np.load(tmp_path / "e.npy") - expected).max() <= 1e-5


@pytest.mark.slow
def test_five_mistakes_reported_at_once_by_the_command(tmp_path):
    """Misspelt type, unknown key, mapping to a missing route, Dense in_features not matching the hidden size,
    Pooling before the Transformer: all five in one run, exit 2. The model directory holds only config.json, so
    reading any weights would fail loudly."""
    (tmp_path / "cfgonly").mkdir()
    (tmp_path / "cfgonly" / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 384}))
    f = tmp_path / "five.yaml"
    f.write_text(
        "modules:\n"
        "  - type: Router\n"
        "    sub_modules:\n"
        "      query: [{type: Pooling}, {type: Transformer, model_name_or_path: cfgonly}]\n"
        "      document:\n"
        "        - {type: Transformer, model_name_or_path: cfgonly, max_seq_lenght: 128}\n"
        "        - {type: Pooling}\n"
        "        - {type: Dense, in_features: 768, out_features: 128}\n"
        "    route_mappings: [{task: query, route: qeury}]\n"
        "  - type: Normalise\n")
    r = stpipe("validate", str(f))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "5 problems" in r.stderr
    for code, path in [("schema.unknown-key", "modules[0].sub_modules.document[0].max_seq_lenght"),
                       ("registry.unknown-type", "modules[1].type"),
                       ("check.route-target", "modules[0].route_mappings[0].route"),
                       ("graph.not-input", "modules[0].sub_modules.query[0]"),
                       ("graph.dim-mismatch", "modules[0].sub_modules.document[2].in_features")]:
        assert f"[{code}] {path}:" in r.stderr
    assert r.stderr.count(f"at {f}:") == 5


# ----------------------------------------------------------------------------- in-process checks (fast)
def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``stpipe ARGS`` in this process: anything but a handled StpipeError would escape as an exception."""
    from stpipe.cli import main

    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_hydra_delete_and_add_overrides_are_not_the_model(capsys):
    from stpipe.cli import _split_args

    assert _split_args(["~model.modules.1.pooling_mode", "+model.x=1", "++batch_size=3", "m.yaml"]) == (
        "m.yaml", ["~model.modules.1.pooling_mode", "+model.x=1", "++batch_size=3"], set())
    assert _split_args(["~/models/m.yaml"])[0] == "~/models/m.yaml"
    rc, out, err = cli(capsys, "validate", "~model.modules.1.pooling_mode")
    assert rc == 0 and "ok:" in out, err
    rc, _, err = cli(capsys, "validate", "~model.modules.1.pooling_mod")
    assert rc == 2 and "[override.unknown-key]" in err and "did you mean 'pooling_mode'?" in err
