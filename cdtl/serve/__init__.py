"""Deployment: a hashed bundle of the trained models, an item index and an HTTP service.

- ``cdtl.serve.bundle``: the bundle folder (safetensors, Parquet, JSON; a manifest of hashes);
- ``cdtl.serve.pack``: trained models to a bundle (``cdtl.experiments.export`` trains them first);
- ``cdtl.serve.index``: exact and FAISS top-K retrieval behind one interface;
- ``cdtl.serve.recommender`` / ``cdtl.serve.loading``: recommendations in-process from a bundle;
- ``cdtl.serve.app`` / ``cdtl.serve.server``: the FastAPI service and ``cdtl serve``; its endpoints in
  ``cdtl.serve.routes``, their shared state in ``cdtl.serve.state``, request bodies checked in ``cdtl.serve.bodies``;
- ``cdtl.serve.store``: the file of items added while serving, shared by a restart and every replica;
- ``cdtl.serve.loadtest``: concurrent HTTP clients that measure the service.

The statistics of online experiments live apart, in ``cdtl.online``.

Each module imports its heavy dependencies (FastAPI, FAISS) itself, so
``import cdtl.serve`` is cheap.
"""
