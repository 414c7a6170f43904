"""``stpipe serve``: a declared model behind an HTTP API (the extra ``stpipe[serve]``: Starlette + uvicorn).

- :mod:`~stpipe.serving.settings` — the serve settings (``conf/serve/``) and the models to serve, validated;
- :mod:`~stpipe.serving.protocol` — request bodies checked field by field, OpenAI-shaped errors;
- :mod:`~stpipe.serving.model` — one served model: request checks, token counts, merged calls;
- :mod:`~stpipe.serving.batching` — dynamic batching on a worker thread;
- :mod:`~stpipe.serving.limits` — body size, API keys, CORS;
- :mod:`~stpipe.serving.metrics` — Prometheus text and the JSON access log;
- :mod:`~stpipe.serving.app` — the Starlette app; :mod:`~stpipe.serving.server` — uvicorn;
  :mod:`~stpipe.serving.ray_serve` — the same app on Ray Serve.

Importing this package imports neither torch nor a web framework. See docs/serving.md.
"""
