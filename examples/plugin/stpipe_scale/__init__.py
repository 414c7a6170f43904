"""An example stpipe plugin: the ``Scale`` module (see docs/plugins.md)."""

from stpipe_scale.scale import Scale

__all__ = ["Scale"]
