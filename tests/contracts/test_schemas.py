"""One source per enum: every ``enum``/``const`` in ``schemas/`` equals the constant the runtime uses (the contracts,
or the runtime module that owns it), and no schema enum escapes this table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stpipe import registry
from stpipe.contracts.modality import MODALITIES
from stpipe.contracts.pooling import LEGACY_MODE_KEYS, POOLING
from stpipe.contracts.static import SPLADE_POOLING
from stpipe.contracts.transformer import MESSAGE_FORMATS, SIDES, TRANSFORMER
from stpipe.resources import schemas_dir

BUILTINS = ("Transformer", "Pooling", "Dense", "Normalize", "Router", "StaticEmbedding", "SparseStaticEmbedding",
            "SpladePooling", "LogitScore", "GraphEncoder")


def _runtime_constants() -> dict[str, tuple[Any, ...]]:
    from stpipe.corpus.runner import ENGINES
    from stpipe.experiments.readers import RETRIEVAL_FORMATS, STS_FORMATS
    from stpipe.experiments.reranking import RERANKING_FORMATS
    from stpipe.formats.save_dir import OVERWRITE_MODES
    from stpipe.hardware import DTYPES
    from stpipe.pipeline import MODEL_TYPES
    from stpipe.runtimes import FORMATS
    from stpipe.runtimes.quantize import OPTIMIZE, QUANTIZE
    from stpipe.similarity import PRECISIONS, SIMILARITY_NAMES
    from stpipe.training.config import LR_SCHEDULERS, TRAINING_PRECISIONS
    from stpipe.training.data import FORMATS as TRAINING_FORMATS

    t = TRANSFORMER.enums
    return {
        "modules/Pooling.schema.json#/properties/pooling_mode/anyOf/0/enum": POOLING.enums["pooling_mode"],
        "modules/Pooling.schema.json#/properties/pooling_mode/anyOf/1/items/enum": POOLING.enums["pooling_mode"],
        "modules/Router.schema.json#/properties/route_mappings/items/properties/modality/anyOf/1/enum": MODALITIES,
        "modules/Router.schema.json#/properties/route_mappings/items/properties/modality/anyOf/3/items/enum":
            MODALITIES,
        "modules/SpladePooling.schema.json#/properties/pooling_strategy/enum":
            SPLADE_POOLING.enums["pooling_strategy"],
        "modules/SpladePooling.schema.json#/properties/activation_function/enum":
            SPLADE_POOLING.enums["activation_function"],
        "modules/Transformer.schema.json#/properties/transformer_task/enum": t["transformer_task"],
        "modules/Transformer.schema.json#/properties/backend/enum": t["backend"],
        "modules/Transformer.schema.json#/properties/processing_kwargs/propertyNames/enum": t["processing_kwargs"],
        "modules/Transformer.schema.json#/properties/processor_kwargs/properties/padding_side/enum": SIDES,
        "modules/Transformer.schema.json#/properties/processor_kwargs/properties/truncation_side/enum": SIDES,
        "modules/Transformer.schema.json#/properties/modality_config/additionalProperties/properties/format/enum":
            MESSAGE_FORMATS,
        "pipeline.schema.json#/properties/model_type/enum": MODEL_TYPES,
        "pipeline.schema.json#/properties/dtype/enum": (*DTYPES, None),
        "pipeline.schema.json#/properties/similarity_fn_name/enum": (*SIMILARITY_NAMES, None),
        "pipeline.schema.json#/$defs/node/else/properties/type/anyOf/0/enum": BUILTINS,
        **{f"pipeline.schema.json#/$defs/node/else/allOf/{i}/if/properties/type/const": (name,)
           for i, name in enumerate(BUILTINS)},
        "run.schema.json#/properties/modality/anyOf/1/enum": MODALITIES,
        "run.schema.json#/properties/modality/anyOf/3/items/enum": MODALITIES,
        "run.schema.json#/properties/overwrite/enum": OVERWRITE_MODES,
        "run.schema.json#/properties/precision/enum": PRECISIONS,
        "run.schema.json#/properties/format/enum": (None, *FORMATS),
        "run.schema.json#/properties/engine/enum": ENGINES,
        "run.schema.json#/properties/quantize/enum": (None, *QUANTIZE),
        "run.schema.json#/properties/optimize/enum": (None, *OPTIMIZE),
        "run.schema.json#/properties/backend/enum": (None, "torch", *FORMATS),
        "data.schema.json#/$defs/sts/properties/format/enum": STS_FORMATS,
        "data.schema.json#/$defs/sts/properties/similarity_fn_names/items/enum": SIMILARITY_NAMES,
        "data.schema.json#/$defs/sts/properties/main_similarity/enum": SIMILARITY_NAMES,
        "data.schema.json#/$defs/retrieval/properties/format/enum": RETRIEVAL_FORMATS,
        "data.schema.json#/$defs/reranking/properties/format/enum": RERANKING_FORMATS,
        "training.schema.json#/properties/lr_scheduler/enum": LR_SCHEDULERS,
        "training.schema.json#/properties/precision/enum": TRAINING_PRECISIONS,
        "training_data.schema.json#/properties/format/enum": TRAINING_FORMATS,
    }


def _enums(node: Any, pointer: str) -> Iterator[tuple[str, tuple[Any, ...]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "enum":
                yield f"{pointer}/enum", tuple(value)
            elif key == "const":
                yield f"{pointer}/const", (value,)
            else:
                yield from _enums(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _enums(value, f"{pointer}/{i}")


def _schema_enums() -> dict[str, tuple[Any, ...]]:
    root = schemas_dir()
    out = {}
    for f in sorted(root.rglob("*.json")):
        rel = Path(f).relative_to(root).as_posix()
        out.update({f"{rel}#{p}": v for p, v in _enums(json.loads(f.read_text(encoding="utf-8")), "")})
    return out


def test_every_schema_enum_is_a_runtime_constant():
    schema, runtime = _schema_enums(), _runtime_constants()
    assert sorted(schema) == sorted(runtime), "a schema enum without its runtime constant (or a stale entry here)"
    for pointer, values in schema.items():
        assert values == tuple(runtime[pointer]), pointer


def test_builtin_names_are_the_registry_builtins():
    assert sorted(BUILTINS) == sorted(n for n in registry.names() if registry.spec(n).origin == "builtin")


def test_modality_config_key_pattern_names_the_modalities():
    schema = json.loads((schemas_dir() / "modules" / "Transformer.schema.json").read_text())
    pattern = schema["properties"]["modality_config"]["propertyNames"]["pattern"]
    assert pattern == f"^({'|'.join(MODALITIES)})(\\+({'|'.join(m for m in MODALITIES if m != 'message')}))*$"


@pytest.mark.parametrize("flag", list(LEGACY_MODE_KEYS))
def test_pooling_schema_accepts_the_deprecated_flags(flag):
    prop = json.loads((schemas_dir() / "modules" / "Pooling.schema.json").read_text())["properties"][flag]
    assert prop["type"] == "boolean" and prop["deprecated"] is True
