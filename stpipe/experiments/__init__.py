"""Experiments: sweeps through Hydra's multirun (:mod:`stpipe.experiments.sweep`)."""
