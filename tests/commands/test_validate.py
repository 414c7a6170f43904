"""``stpipe validate`` (:mod:`stpipe.commands.validate`), in this process: a sweep validates every point, and an
override that breaks a module loaded from a folder is caught before any weight loads."""

from __future__ import annotations


def test_multirun_over_a_saved_model_validates_every_point(cli, tiny_bert_dir):
    rc, out, err = cli("validate", "-m", str(tiny_bert_dir), "model.modules.1.pooling_mode=cls,meen")
    assert rc == 2
    assert "ok    sweep point 0: model.modules.1.pooling_mode=cls" in out
    assert "FAIL  sweep point 1: model.modules.1.pooling_mode=meen" in err and "did you mean 'mean'?" in err
    assert "1 of 2 sweep points valid" in err

def test_multimodal_override_that_breaks_a_loaded_dense_is_caught(cli, standins):
    rc, _, err = cli("validate", "model=multimodal",
                     "model.modules.0.sub_modules.text.1.pooling_mode=[mean,max]")
    assert rc == 2
    assert "[graph.dim-mismatch] modules[0].sub_modules.text[2].load_from: Dense loaded from 'minilm-to-clip' " \
           "expects 'sentence_embedding' of dimension 384 (in_features of the saved module), but 768 arrives" in err


def test_a_valid_definition_with_its_warnings_and_the_explanation(cli, tmp_path, tiny_bert_dir):
    f = tmp_path / "m.yaml"
    f.write_text(f"name: tiny\nmodules:\n  - type: Transformer\n    model_name_or_path: {tiny_bert_dir}\n"
                 "  - type: Pooling\n    pooling_mode: mean\n")
    rc, out, err = cli("validate", str(f), "--explain")
    assert rc == 0 and out.startswith(f"ok: {f} is a valid model definition\n"), err
    assert "# resolved configuration" in out and "pooling_mode: mean" in out
    assert "sentence_embedding" in out  # the walk of the features, with its dimension
    assert "32" in out.split("# resolved configuration")[1]


def test_the_training_settings_an_override_names_are_checked(cli):
    rc, _, err = cli("validate", "training.epochs=-1")
    assert rc == 2 and "training.epochs" in err and "Traceback" not in err
    rc, out, _ = cli("validate", "training.epochs=2")
    assert rc == 0 and out.startswith("ok:")
