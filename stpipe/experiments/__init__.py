"""Experiments over model definitions: sweeps and their reports (:mod:`stpipe.experiments.report`)."""
