"""Dense's contract (:mod:`stpipe.contracts.dense`): the activation names validation accepts are exactly the ones
the runtime builds; its features and dimension rule."""

from __future__ import annotations

import inspect

import pytest

from stpipe.config.validate import inspect_definition
from stpipe.contracts.dense import ACTIVATION_CLASSES, NEEDS_ARGUMENTS, SHORT_NAMES, activation_class, describe


def test_activation_names_are_torchs():
    from torch import nn

    defined = sorted(n for n, o in vars(nn.modules.activation).items() if inspect.isclass(o)
                     and issubclass(o, nn.Module) and o.__module__ == nn.modules.activation.__name__)
    assert sorted(ACTIVATION_CLASSES) == defined
    for short, cls_name in SHORT_NAMES.items():
        if cls_name not in NEEDS_ARGUMENTS:
            assert activation_class(short) == cls_name and isinstance(getattr(nn, cls_name)(), nn.Module)
    for cls_name in NEEDS_ARGUMENTS:
        with pytest.raises(TypeError):
            getattr(nn, cls_name)()


@pytest.mark.parametrize("value", ["relu", "torch.nn.Flatten", "torch.nn.Linear", "tanhh", "torch.nn.Threshold"])
def test_validation_accepts_exactly_the_activations_the_runtime_builds(value):
    from stpipe.modules.dense import Dense

    node = {"type": "Dense", "in_features": 2, "out_features": 2, "activation_function": value}
    report = inspect_definition({"modules": [{"type": "StaticEmbedding", "tokenizer": "t", "embedding_dim": 2},
                                             node]})
    flagged = any(p.code == "check.activation" for p in report.problems)
    try:
        Dense(2, 2, activation_function=value)
        built = True
    except ValueError:
        built = False
    assert flagged != built


def test_dense_reads_its_input_and_projects_to_out_features():
    io = describe({"in_features": 4, "out_features": 2}, {})
    assert (io.consumes, io.produces, io.requires_dim) == (
        {"sentence_embedding": "module_input_name"}, {"sentence_embedding": 2},
        [("sentence_embedding", 4, "in_features")])
    assert activation_class(None) == "Identity" and activation_class("torch.nn.modules.activation.Tanh") == "Tanh"
    with pytest.raises(ValueError, match="tanhh"):
        activation_class("tanhh")
