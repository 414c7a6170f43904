"""Where modules run: the seed's module system, one file per family (see ``stpipe.registry`` for names)."""
