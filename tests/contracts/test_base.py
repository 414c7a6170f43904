"""The contract record (:mod:`stpipe.contracts.base`): a saved config as the constructor takes it."""

from __future__ import annotations

from stpipe.contracts.base import Contract, FeatureIO, no_io


def test_a_saved_config_gets_its_renames_then_its_cleaning():
    seen = []
    c = Contract(name="X", config_files=("x.json", "old.json"), config_key_renames={"old": "new"},
                 clean_config=lambda cfg: seen.append(dict(cfg)))
    assert c.config_file_name == "x.json"
    assert c.saved_config({"old": 1, "keep": 2}) == {"new": 1, "keep": 2} and seen == [{"keep": 2, "new": 1}]
    assert c.saved_config({"old": 1, "new": 3}) == {"old": 1, "new": 3}  # the current key wins, nothing lost


def test_a_module_that_says_nothing_describes_no_features():
    assert no_io({"a": 1}, {"sentence_embedding": 8}) == FeatureIO()
    assert Contract(name="Y").describe({}, {}, None) == FeatureIO()
