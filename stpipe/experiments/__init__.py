"""Experiments: evaluation data sets, evaluators and the reports of sweeps (:mod:`stpipe.experiments.report`);
the sweeps themselves run through Hydra's multirun in :mod:`stpipe.commands.sweep`.

The API the ``stpipe evaluate`` verb uses (nothing here is imported by ``import stpipe``)::

    from stpipe.experiments.data import data_config_from, check_data, load_data_config
    from stpipe.experiments.evaluators import evaluate, render_result

    cfg = data_config_from(composed.run["data"])        # the `data` node → DataConfig (ConfigError if bad)
    problems = check_data(cfg)                          # the file(s), line by line; no weights loaded
    result = evaluate(pipeline, cfg, batch_size=32)     # {"evaluator", "data", "main_metric", "metrics", "n", …}
    print(render_result(result))

See :mod:`stpipe.experiments.data`, :mod:`~stpipe.experiments.readers`, :mod:`~stpipe.experiments.evaluators`
(the registry, STS) and :mod:`~stpipe.experiments.retrieval`.
"""
