"""``stpipe schema`` (:mod:`stpipe.commands.schema`): the combined JSON Schema an editor reads for completion."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator


def test_it_prints_the_combined_schema_that_selects_a_node_by_type(cli):
    rc, out, _ = cli("schema")
    assert rc == 0
    schema = json.loads(out)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"modules": [{"type": "Pooling", "pooling_mode": "mean"}]})
    assert not validator.is_valid({"modules": [{"type": "Pooling", "pooling_mode": "meen"}]})
