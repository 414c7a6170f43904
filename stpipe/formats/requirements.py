"""The ``requirements`` and ``__version__`` entries of ``config_sentence_transformers.json``: a model whose declared
package requirements are not met is refused before any module loads."""

from __future__ import annotations

import logging
import platform
from typing import Any

from stpipe.errors import LoadError

logger = logging.getLogger("stpipe")


def version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


def check_requirements(requirements: Any, where: str) -> None:
    """Refuse to load a model whose declared package requirements are not met (before any module loads)."""
    if not requirements:
        return
    if not isinstance(requirements, dict):
        logger.warning("%s: ignoring 'requirements' (expected an object of version specifiers)", where)
        return
    from importlib.metadata import PackageNotFoundError  # only when a saved model states requirements
    from importlib.metadata import version as dist_version

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    unmet = []
    for package, req in requirements.items():
        package = {"pytorch": "torch"}.get(package, package)
        spec = req.get("specifier", "") if isinstance(req, dict) else req
        reason = req.get("reason", "") if isinstance(req, dict) else ""
        try:
            installed = platform.python_version() if package == "python" else dist_version(package)
        except PackageNotFoundError:
            installed = None
        try:
            if installed is not None and SpecifierSet(str(spec), prereleases=True).contains(Version(installed)):
                continue
        except Exception as exc:  # an unparsable specifier only warns
            logger.warning("%s: cannot check requirement %s%s: %s", where, package, spec, exc)
            continue
        found = f"{installed} is installed" if installed else "it is not installed"
        unmet.append(f"{package}{spec} ({found}){' — ' + reason if reason else ''}")
    if unmet:
        raise LoadError("the model requires " + "; ".join(unmet), path=where,
                        hint="install compatible versions: pip install -U " + " ".join(
                            f'"{u.split(" ")[0]}"' for u in unmet if not u.startswith("python")))
