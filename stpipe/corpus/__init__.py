"""Corpus-scale encoding: ``stpipe encode`` on inputs of any size — streamed, checkpointed, resumable, parallel.

* :mod:`~stpipe.corpus.readers` — ``.txt``/``.jsonl``/``.csv``/``.tsv``/Parquet read chunk by chunk (pre-scan first);
* :mod:`~stpipe.corpus.writers` — chunk files and the manifest of a partial output (resume), npy/jsonl/Parquet;
* :mod:`~stpipe.corpus.runner` — the chunk loop (:func:`~stpipe.corpus.runner.encode_corpus`);
* :mod:`~stpipe.corpus.workers` — ``workers=N`` processes; :mod:`~stpipe.corpus.ray_engine` — ``engine=ray``;
* :mod:`~stpipe.corpus.merge` — joining chunks and shards in order (``stpipe merge DIR``).
"""
