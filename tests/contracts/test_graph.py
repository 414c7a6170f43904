"""GraphEncoder's contract (:mod:`stpipe.contracts.graph`): the embedding width recorded in an export's manifest,
read as untrusted data (anything malformed: unknown, never an exception)."""

from __future__ import annotations

import json

import pytest

from stpipe.contracts.graph import MANIFEST, describe, manifest_dimension


def test_the_width_of_each_route_comes_from_the_manifest(tmp_path):
    (tmp_path / MANIFEST).write_text(json.dumps({"routes": {"": {"dimension": 8}, "query": {"dimension": 4}}}))
    assert manifest_dimension(tmp_path, None) == 8 and manifest_dimension(tmp_path, "query") == 4
    assert describe({"export_dir": str(tmp_path), "route": "query"}, {}).produces == {"sentence_embedding": 4}


@pytest.mark.parametrize("text", ["{not json", "[]", '{"routes": []}', '{"routes": {"": {"dimension": "8"}}}',
                                  '{"routes": {"": 8}}', '{"routes": {"other": {"dimension": 8}}}'])
def test_a_malformed_or_missing_manifest_gives_an_unknown_width(tmp_path, text):
    (tmp_path / MANIFEST).write_text(text)
    assert manifest_dimension(tmp_path, None) is None
    assert manifest_dimension(tmp_path / "absent", None) is None
