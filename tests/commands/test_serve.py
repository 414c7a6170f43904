"""``stpipe serve`` (:mod:`stpipe.commands.serve`), the cheap part: what it refuses before anything is bound or
built. Serving itself: tests/serving/."""

from __future__ import annotations


def test_sweeps_and_explain_are_refused_before_anything_starts(cli):
    for flag in ("-m", "--explain"):
        rc, out, err = cli("serve", flag)
        assert rc == 2 and "stpipe serve takes no" in err and out == ""
