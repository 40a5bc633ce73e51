"""One call that gives every item of a table its language-model vector, cached on disk so each catalogue is encoded once."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from cdtl.encoders.text_encoder import TextEncoder
from cdtl.env import cache_dir as data_cache_dir


def encode_items(
    items: pd.DataFrame,
    *,
    model: str | None = None,
    pooling: str = "mean",
    max_length: int = 64,
    batch_size: int = 64,
    column: str = "text",
    cache: bool = True,
    **options: Any,
) -> torch.Tensor:
    """(len(items), d) float32 vectors of ``items[column]``, row r for ``items`` row r.

    ``model`` is a Hugging Face id or folder (``None``: the packaged all-MiniLM-L6-v2).
    With ``cache`` the vectors are stored under ``cdtl.data.cache_dir() / "embeddings"``
    (keyed by model, pooling, length and text), so later calls are lookups.
    ``options`` go to ``TextEncoder``.
    """
    if column not in items.columns:
        raise ValueError(f"items has no {column!r} column (columns: {list(items.columns)}); "
                         "compose item texts with cdtl.data.text.compose_item_text first")
    cache_dir = None
    if cache:
        cache_dir = data_cache_dir() / "embeddings"
    encoder = TextEncoder(model, pooling=pooling, max_length=max_length, batch_size=batch_size,
                          cache_dir=cache_dir, **options)
    return encoder.encode(items[column].tolist(), ids=items["item"].tolist() if "item" in items else None).float()


__all__ = ["encode_items"]
