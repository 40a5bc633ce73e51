"""Open a bundle for serving: verify it, load the text encoder it names and check that it reproduces the bundle's vectors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cdtl.serve.bundle import Bundle, BundleError, read_bundle
from cdtl.serve.index import IndexSettings
from cdtl.serve.recommender import Recommender

MIN_PROBE_COSINE = 0.995  # a float32 CPU encoder reproduces to ~1e-6; bf16 on a GPU export to ~1e-3


def load_encoder(bundle: Bundle) -> tuple[Any, dict[str, Any]]:
    """(encoder, check): the bundle's text encoder, and how well it reproduced the bundle's probe vectors.

    The packaged all-MiniLM-L6-v2 is used when the bundle names it (no network); any other
    model is loaded by its name. The encoder must re-encode the probe texts to vectors
    with cosine at least ``MIN_PROBE_COSINE`` to the stored ones, else ``BundleError``:
    a different model or version would put new items and free text in another space.
    """
    from cdtl.encoders.text_encoder import DEFAULT_MODEL, TextEncoder

    identity = bundle.serving["encoder"]
    model = None if identity["model"] == DEFAULT_MODEL else identity["model"]
    try:
        encoder = TextEncoder(model, pooling=identity["pooling"], max_length=int(identity["max_length"]),
                              normalize=bool(identity["normalize"]), device="cpu", batch_size=32)
    except OSError as err:
        raise BundleError(f"{bundle.path / 'serving.json'}: cannot load the text encoder {identity['model']!r}: {err}") from err
    stored = bundle.tensors["text"]["probe"].numpy()
    fresh = encoder.encode(identity["probe_texts"]).numpy()
    cosine = (fresh * stored).sum(1) / (np.linalg.norm(fresh, axis=1) * np.linalg.norm(stored, axis=1) + 1e-12)
    check = {"model": encoder.model_name, "min_probe_cosine": float(cosine.min()),
             "same_files": encoder.identity.get("files_sha256") == identity.get("files_sha256")}
    if cosine.min() < MIN_PROBE_COSINE:
        raise BundleError(f"{bundle.path / 'text.safetensors'}: the text encoder {encoder.model_name!r} does not reproduce "
                          f"the bundle's probe vectors (cosine {cosine.min():.4f} < {MIN_PROBE_COSINE}): install the "
                          "encoder the bundle was exported with")
    return encoder, check


def load_recommender(path: str | os.PathLike, *, text: bool = True, index: IndexSettings | dict | None = None,
                     **options: Any) -> Recommender:
    """A ``Recommender`` for the bundle at ``path``: verified, with its text encoder unless ``text=False``.

    ``index`` is an ``IndexSettings`` or a mapping of its fields (e.g. ``{"kind": "hnsw"}``);
    ``options`` go to ``Recommender`` (``scorers``, ``fusion``).
    """
    bundle = read_bundle(Path(path))
    settings = index if isinstance(index, IndexSettings) else IndexSettings.from_dict(index)
    encoder, check = load_encoder(bundle) if text else (None, None)
    recommender = Recommender(bundle, encoder=encoder, index=settings, **options)
    recommender.encoder_check = check
    return recommender


__all__ = ["MIN_PROBE_COSINE", "load_encoder", "load_recommender"]
