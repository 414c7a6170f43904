"""Hostile input to the ``stpipe`` command, run as a user would (a subprocess): every case is a short stpipe error
(exit 2, naming the file or config path) — never a traceback, never injected YAML, never unbounded memory."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 3 * 1024**3  # a regressed alias bomb dies of MemoryError here instead of eating the machine


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def stpipe(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300,
           limit: bool = False) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    return subprocess.run([sys.executable, "-m", "stpipe", *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd or REPO, timeout=timeout, preexec_fn=_limit_memory if limit else None)


def clean_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and len(r.stderr) < 3000, r.stderr[-2000:]
    for n in needles:
        assert n in r.stderr, r.stderr


BOMB = "a: &a [" + ", ".join(["lol"] * 9) + "]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def test_yaml_alias_bomb_is_refused_at_its_line(tmp_path):
    (tmp_path / "bomb.yaml").write_text(BOMB)
    r = stpipe("validate", str(tmp_path / "bomb.yaml"), limit=True, timeout=120)
    clean_error(r, "[yaml.alias-bomb]", f"at {tmp_path / 'bomb.yaml'}:")


def test_deeply_nested_routers_are_one_short_error(tmp_path):
    node: list = [{"type": "Transformer", "model_name_or_path": "all-MiniLM-L6-v2"}, {"type": "Pooling"}]
    for _ in range(40):
        node = [{"type": "Router", "sub_modules": {"q": node}, "default_route": "q"}]
    (tmp_path / "deep.yaml").write_text(yaml.safe_dump({"modules": node}))
    clean_error(stpipe("validate", str(tmp_path / "deep.yaml")), "[yaml.too-deep]", "deep.yaml:")


def test_import_cannot_inject_yaml_through_the_directory_name(tmp_path, tiny_bert_dir):
    import stpipe as st

    saved = tmp_path / "dir\ntrust_remote_code: true\n#"
    st.build({"modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                          {"type": "Pooling"}]}).save(str(saved))
    r = stpipe("import", str(saved))
    assert r.returncode == 0, r.stderr
    from stpipe.formats.st import to_definition

    assert yaml.safe_load(r.stdout) == to_definition(str(saved))
    assert not any(line.startswith("trust_remote_code") for line in r.stdout.splitlines())


def test_output_that_is_a_directory_is_refused_before_the_model_loads(tmp_path):
    (tmp_path / "in.txt").write_text("hello\n")
    (tmp_path / "emb.npy").mkdir()
    r = stpipe("encode", f"inputs={tmp_path / 'in.txt'}", f"output={tmp_path / 'emb.npy'}")
    clean_error(r, "[run.output] output", "is a directory", "at override `output=")
    assert "encoded" not in r.stdout


def test_output_below_a_file_is_refused(tmp_path):
    (tmp_path / "in.txt").write_text("hello\n")
    r = stpipe("encode", f"inputs={tmp_path / 'in.txt'}", f"output={tmp_path / 'in.txt' / 'emb.npy'}")
    clean_error(r, "[run.output] output", "is a file")


def test_export_into_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    clean_error(stpipe("export", f"out={tmp_path / 'f'}"), "[run.out] out", "is a file")


def test_inputs_that_are_not_utf8_name_the_file_and_line(tmp_path):
    (tmp_path / "in.txt").write_bytes(b"fine\nbad \xff\xfe here\n")
    r = stpipe("encode", f"inputs={tmp_path / 'in.txt'}", f"output={tmp_path / 'e.npy'}")
    clean_error(r, f"{tmp_path / 'in.txt'}:2: not UTF-8")


def test_module_base_class_is_not_an_activation(tmp_path):
    (tmp_path / "m.yaml").write_text(
        "modules:\n  - type: Transformer\n    model_name_or_path: all-MiniLM-L6-v2\n  - type: Pooling\n"
        "  - type: Dense\n    in_features: 384\n    out_features: 8\n    activation_function: torch.nn.Module\n")
    clean_error(stpipe("validate", str(tmp_path / "m.yaml")), "[check.activation] modules[2].activation_function",
                "m.yaml:8:")


def test_explain_into_a_closed_pipe_is_no_traceback():
    p = subprocess.Popen([sys.executable, "-m", "stpipe", "validate", "--explain"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    p.stdout.close()  # like `| head -0`: the reader is gone before the first line
    err = p.stderr.read()
    assert p.wait(timeout=300) == 2, err
    assert err == ""  # the reader left, as `head` does: no traceback and no error message either
    # `stpipe schema | head -1`
    p = subprocess.run(f"{sys.executable} -m stpipe schema | head -1", shell=True, capture_output=True, text=True,
                       cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert p.stdout.strip() == "{" and p.stderr == "", p.stderr


def test_model_choice_is_a_name_not_a_path():
    clean_error(stpipe("validate", "model=../../x"), "[override.unknown-option] model", "not a model name",
                "goes as the MODEL argument")


def test_a_regular_file_is_not_a_model_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    r = stpipe("validate", f"model.modules.0.model_name_or_path={tmp_path / 'f'}")
    clean_error(r, "[check.model-path] modules[0].model_name_or_path", "is a file, not a model directory")


@pytest.mark.parametrize(("override", "says"), [
    ("model.name='x", "unexpected character \"'\" at position 12"),
    ("a b=1", "unexpected character ' ' at position 2"),
    ("model.modules.1.pooling_mode=mean,", "ends too early"),
])
def test_override_syntax_errors_say_what_and_where(override, says):
    r = stpipe("validate", "minilm", override)
    clean_error(r, "[override.syntax]", says, f"at override `{override}`")
    assert "model=minilm" not in r.stderr and "invalid override: " + " " * 5 not in r.stderr


def test_self_referencing_router_is_one_problem(tmp_path):
    (tmp_path / "m.yaml").write_text("modules:\n  - type: Router\n    id: r\n    default_route: q\n"
                                     "    sub_modules:\n      q: [{ref: r}]\n")
    r = stpipe("validate", str(tmp_path / "m.yaml"))
    clean_error(r, "1 problem", "[check.ref-cycle]")
    assert "internal" not in r.stderr


def test_environment_secrets_never_reach_a_saved_model(tmp_path):
    env = {"STPIPE_TEST_SECRET": "hunter2-secret"}
    r = stpipe("export", "model.name=${oc.env:STPIPE_TEST_SECRET}", f"out={tmp_path / 'out'}", env=env)
    clean_error(r, "[yaml.env-interpolation] model.name", "STPIPE_TEST_SECRET",
                "at override `model.name=${oc.env:STPIPE_TEST_SECRET}`")
    assert "hunter2" not in r.stdout + r.stderr and not (tmp_path / "out").exists()
    (tmp_path / "m.yaml").write_text("name: ${oc.env:STPIPE_TEST_SECRET}\nmodules:\n  - type: Transformer\n"
                                     "    model_name_or_path: all-MiniLM-L6-v2\n  - type: Pooling\n")
    clean_error(stpipe("validate", str(tmp_path / "m.yaml"), env=env), "[yaml.env-interpolation] model.name",
                "m.yaml:1:")
    r = stpipe("validate", "+secret=${oc.env:STPIPE_TEST_SECRET}", "model.name=${secret}", env=env)
    clean_error(r, "[yaml.env-interpolation] model.name")
    # the run settings may read the environment: they are not saved
    r = stpipe("validate", "device=${oc.env:STPIPE_TEST_DEVICE}", env={"STPIPE_TEST_DEVICE": "cpu"})
    assert r.returncode == 0, r.stderr


def test_image_paths_are_text_for_a_text_model_as_in_python(tmp_path):
    from PIL import Image

    import stpipe as st

    Image.new("RGB", (8, 8), "red").save(tmp_path / "cat.png")
    (tmp_path / "in.txt").write_text("cat.png\n")
    r = stpipe("encode", "inputs=in.txt", "output=e.npy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    os.chdir(tmp_path)
    try:
        expected = st.build(str(REPO / "conf/model/minilm.yaml")).encode(["cat.png"])
    finally:
        os.chdir(REPO)
    assert np.abs(np.load(tmp_path / "e.npy") - expected).max() <= 1e-5


def test_config_warnings_print_like_errors(tmp_path, tiny_bert_dir):
    bert = json.dumps(str(tiny_bert_dir))
    (tmp_path / "m.yaml").write_text(
        "modules:\n  - type: Router\n    sub_modules:\n"
        f"      query: [{{type: Transformer, model_name_or_path: {bert}}}, {{type: Pooling}}]\n"
        f"      document: [{{type: Transformer, model_name_or_path: {bert}}}, {{type: Pooling}},\n"
        "                 {type: Dense, in_features: 32, out_features: 8}]\n")
    (tmp_path / "in.txt").write_text("hello\n")
    r = stpipe("encode", str(tmp_path / "m.yaml"), f"inputs={tmp_path / 'in.txt'}", "task=query",
               f"output={tmp_path / 'e.npy'}")
    assert r.returncode == 0, r.stderr
    assert "stpipe encode: warning [graph.route-dims]" in r.stderr
    assert "ConfigWarning" not in r.stderr and ".py:" not in r.stderr


def test_a_full_disk_while_writing_leaves_nothing_and_names_the_file(tmp_path, monkeypatch):
    import errno

    from stpipe.commands.encode import write_output
    from stpipe.errors import CommandError

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", full)
    out = tmp_path / "emb.npy"
    with pytest.raises(CommandError, match=f"output '{out}': cannot write it: No space left on device"):
        write_output(np.zeros((2, 3), dtype=np.float32), str(out))
    assert list(tmp_path.iterdir()) == []
