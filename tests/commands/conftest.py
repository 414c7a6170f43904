"""What the tests of the verbs share: ``stpipe ARGS`` run in this process (cheap: no new interpreter, no second
torch import), with its exit code, stdout and stderr."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture()
def cli(capsys) -> Callable[..., tuple[int, str, str]]:
    """``cli("validate", "m.yaml")`` → (exit code, stdout, stderr): anything but a handled StpipeError would escape
    as an exception."""
    from stpipe.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(list(args))
        out, err = capsys.readouterr()
        return rc, out, err

    return run
