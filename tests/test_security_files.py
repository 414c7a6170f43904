"""Loading never trusts the files being loaded (issue 8 items 3, 5, 6, 8, 10): security settings come from the
caller, a Router cannot route to itself, a missing module is an error, and every bad file is a LoadError naming
it (CLI exit 2). See docs/security.md."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from stpipe.builder import build, load
from stpipe.cli import main
from stpipe.errors import LoadError

SENTS = ["a cat on a mat", "dogs run in the park"]


@pytest.fixture(scope="module")
def saved(tiny_bert_dir, tmp_path_factory) -> Path:
    """Transformer + cls Pooling + Dense, saved."""
    torch.manual_seed(0)
    pipe = build({"modules": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)},
                              {"type": "Pooling", "pooling_mode": "cls"},
                              {"type": "Dense", "in_features": 32, "out_features": 8}]}, device="cpu")
    out = tmp_path_factory.mktemp("saved") / "model"
    pipe.save(out)
    return out


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def encode_cli(model: Path, tmp_path: Path, *extra: str) -> int:
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(SENTS))
    return main(["encode", str(model), f"inputs={inputs}", f"output={tmp_path / 'out.npy'}", *extra])


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


# ------------------------------------------------------------------------------ security settings: the caller's
def test_saved_configs_cannot_switch_on_pickle_or_remote_code(saved, tmp_path, capsys, monkeypatch):
    """Security settings come from the caller (argument, run setting), never from the files being loaded."""
    m = copy(saved, tmp_path / "m")
    state = __import__("safetensors.torch", fromlist=["load_file"]).load_file(str(m / "model.safetensors"))
    torch.save(state, m / "pytorch_model.bin")
    (m / "model.safetensors").unlink()
    edit_json(m / "sentence_bert_config.json", model_kwargs={"use_safetensors": False})
    with pytest.raises(LoadError, match="refusing to load pickle") as e:
        load(m, device="cpu")
    assert e.value.file == str(m / "pytorch_model.bin")
    assert encode_cli(m, tmp_path) == 2
    assert "refusing to load pickle" in capsys.readouterr().err
    load(m, device="cpu", allow_pickle=True)  # the caller's consent
    assert encode_cli(m, tmp_path, "allow_pickle=true") == 0
    _check_remote_code_stays_off(saved, tmp_path, monkeypatch)


def _check_remote_code_stays_off(saved, tmp_path, monkeypatch):
    import transformers

    m = copy(saved, tmp_path / "rc")
    edit_json(m / "sentence_bert_config.json", config_kwargs={"trust_remote_code": True},
              processor_kwargs={"trust_remote_code": True}, model_kwargs={"trust_remote_code": True})
    seen = []
    for cls in (transformers.AutoConfig, transformers.AutoModel, transformers.AutoTokenizer):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            seen.append(kwargs.get("trust_remote_code"))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    load(m, device="cpu")
    assert seen and not any(seen)
    seen.clear()
    load(m, device="cpu", trust_remote_code=True)
    assert seen and all(seen)


# ------------------------------------------------------------------------------ Router cycles
def test_a_router_that_routes_to_itself_is_refused_before_loading(tiny_bert_dir, tmp_path, monkeypatch, capsys):
    from stpipe.modules import transformer as transformer_mod

    torch.manual_seed(0)
    pipe = build({"modules": [{"type": "Router", "sub_modules": {
        "query": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)}, {"type": "Pooling"}],
        "document": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)}, {"type": "Pooling"}]}}]},
        device="cpu")
    pipe.save(tmp_path / "r")
    cfg = tmp_path / "r" / "router_config.json"
    data = json.loads(cfg.read_text())
    data["types"]["."] = "sentence_transformers.base.modules.router.Router"
    data["structure"]["document"] = ["."]
    cfg.write_text(json.dumps(data))
    built = []
    monkeypatch.setattr(transformer_mod, "load_model", lambda *a, **k: built.append(1) or pytest.fail("loaded"))
    with pytest.raises(LoadError, match=r"module '\.' is the folder of a Router that contains it") as e:
        load(tmp_path / "r", device="cpu")
    assert e.value.file == str(cfg) and built == []
    assert encode_cli(tmp_path / "r", tmp_path) == 2
    assert "its routes form a cycle" in capsys.readouterr().err


def test_a_router_cycle_through_a_symlink_is_refused(tiny_bert_dir, tmp_path):
    pipe = build({"modules": [{"type": "Router", "sub_modules": {
        "query": [{"type": "Transformer", "model_name_or_path": str(tiny_bert_dir)}, {"type": "Pooling"}]}}]},
        device="cpu")
    pipe.save(tmp_path / "r")
    cfg = tmp_path / "r" / "router_config.json"
    data = json.loads(cfg.read_text())
    data["types"]["loop"] = "sentence_transformers.base.modules.router.Router"
    data["structure"]["query"] = ["loop"]
    cfg.write_text(json.dumps(data))
    (tmp_path / "r" / "loop").symlink_to(tmp_path / "r")
    with pytest.raises(LoadError, match="its routes form a cycle"):
        load(tmp_path / "r", device="cpu")


# ------------------------------------------------------------------------------ missing modules
def test_a_missing_module_folder_is_an_error(saved, tmp_path, capsys):
    m = copy(saved, tmp_path / "m")
    shutil.rmtree(m / "1_Pooling")
    with pytest.raises(LoadError, match=r"module '1' \(Pooling\) in '1_Pooling', but that folder is missing") as e:
        load(m, device="cpu")
    assert e.value.file == str(m / "1_Pooling")
    assert encode_cli(m, tmp_path) == 2
    assert "1_Pooling" in capsys.readouterr().err
    # as in sentence-transformers, a Normalize may lack its folder (the shipped MiniLM's 2_Normalize)
    n = copy(saved, tmp_path / "n")
    entries = json.loads((n / "modules.json").read_text())
    entries.append({"idx": 3, "name": "3", "path": "3_Normalize",
                    "type": "sentence_transformers.sentence_transformer.modules.Normalize"})
    (n / "modules.json").write_text(json.dumps(entries))
    assert type(load(n, device="cpu")[3]).__name__ == "Normalize"


def test_a_missing_module_config_is_an_error(saved, tmp_path):
    m = copy(saved, tmp_path / "m")
    (m / "1_Pooling" / "config.json").unlink()
    with pytest.raises(LoadError, match="its folder has no config.json") as e:
        load(m, device="cpu")
    assert e.value.file == str(m / "1_Pooling" / "config.json")


# ------------------------------------------------------------------------------ bad files name the file
def test_a_config_that_is_not_utf8_is_named(saved, tmp_path, capsys):
    m = copy(saved, tmp_path / "m")
    f = m / "1_Pooling" / "config.json"
    f.write_bytes('{"pooling_mode": "cls", "note": "caf\u00e9"}'.encode("latin-1"))
    with pytest.raises(LoadError, match="not UTF-8") as e:
        load(m, device="cpu")
    assert e.value.file == str(f)
    assert encode_cli(m, tmp_path) == 2
    assert str(f) in capsys.readouterr().err


def test_an_invalid_saved_value_is_named(saved, tmp_path, capsys):
    m = copy(saved, tmp_path / "m")
    f = m / "1_Pooling" / "config.json"
    edit_json(f, embedding_dimension=-5)
    with pytest.raises(LoadError) as e:
        load(m, device="cpu")
    assert e.value.file == str(f) and "-5" in str(e.value)
    assert encode_cli(m, tmp_path) == 2
    assert str(f) in capsys.readouterr().err


def test_a_garbage_tokenizer_json_is_named(saved, tmp_path, capsys):
    m = copy(saved, tmp_path / "m")
    (m / "tokenizer.json").write_text('{"this is": "not a tokenizer"')
    with pytest.raises(LoadError) as e:
        load(m, device="cpu")
    assert e.value.file == str(m / "tokenizer.json")
    assert encode_cli(m, tmp_path) == 2
    assert str(m / "tokenizer.json") in capsys.readouterr().err


def test_saved_text_never_reads_the_environment(saved, tmp_path, monkeypatch):
    """A saved prompt is data: `${oc.env:…}` in it is not an interpolation, for stpipe.load and the CLI path."""
    from stpipe.config.compose import compose

    monkeypatch.setenv("STPIPE_TEST_SECRET", "s3cret")
    m = copy(saved, tmp_path / "m")
    edit_json(m / "config_sentence_transformers.json",
              prompts={"query": "${oc.env:STPIPE_TEST_SECRET}", "doc": "\\${x}"})
    pipe = load(m, device="cpu")
    assert pipe.prompts["query"] == "${oc.env:STPIPE_TEST_SECRET}" and pipe.prompts["doc"] == "\\${x}"
    composed = compose(str(m), [])
    assert composed.definition["prompts"]["query"] == "${oc.env:STPIPE_TEST_SECRET}"
    assert "s3cret" not in json.dumps(composed.definition)
