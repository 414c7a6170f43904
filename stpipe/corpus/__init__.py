"""Corpus-scale encoding: ``stpipe encode`` on inputs of any size — streamed, checkpointed, resumable, parallel.

* :mod:`~stpipe.corpus.readers` — ``.txt``/``.jsonl``/``.csv``/``.tsv``/Parquet read chunk by chunk (pre-scan first,
  the inputs' fingerprint); :mod:`~stpipe.corpus.lines` — the line formats, their quoting rules and bounds;
* :mod:`~stpipe.corpus.writers` — chunk files in npy/jsonl/Parquet; :mod:`~stpipe.corpus.partial` — the verified
  partial output of a run (resume);
* :mod:`~stpipe.corpus.runner` — the chunk loop (:func:`~stpipe.corpus.runner.encode_corpus`);
* :mod:`~stpipe.corpus.workers` — ``workers=N`` processes; :mod:`~stpipe.corpus.ray_engine` — ``engine=ray``;
* :mod:`~stpipe.corpus.merge` — joining chunks and verified shards in order (``stpipe merge DIR``).

One writer per output: :class:`stpipe.lock.OutputLock`.
"""
