"""Deployment: a hashed bundle of the trained models, an item index and an HTTP service.

- ``cdtl.serve.bundle``: the bundle folder (safetensors, Parquet, JSON; a manifest of hashes);
- ``cdtl.serve.pack`` / ``cdtl.serve.export``: trained models to a bundle;
- ``cdtl.serve.index``: exact and FAISS top-K retrieval behind one interface;
- ``cdtl.serve.recommender`` / ``cdtl.serve.loading``: recommendations in-process from a bundle;
- ``cdtl.serve.app`` / ``cdtl.serve.server``: the FastAPI service and ``cdtl serve``;
- ``cdtl.serve.loadtest``: concurrent HTTP clients that measure the service.

The statistics of online experiments live apart, in ``cdtl.online``.

Each module imports its heavy dependencies (FastAPI, FAISS) itself, so
``import cdtl.serve`` is cheap.
"""
