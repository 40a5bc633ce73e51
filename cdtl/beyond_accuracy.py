"""What a model recommends, not only how well: catalogue coverage, novelty and the share of popular items in its top lists.

Popularity is a strong baseline in every chapter, so a model's accuracy alone does not say
whether it recommends anything but the head of the catalogue. These measures read a model's
top-k lists (``cdtl.evaluate.top_k``) and the training interactions' item counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _top(top: Any) -> np.ndarray:
    array = np.asarray(top.cpu() if hasattr(top, "cpu") else top)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError("top must be a (users, k) array of item indices with at least one user and k >= 1, got shape "
                         f"{array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"top must hold integer item indices, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _counts(item_counts: Any, top: np.ndarray) -> np.ndarray:
    counts = np.asarray(item_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any():
        raise ValueError("item_counts must be a 1-D array of non-negative training counts, one per item")
    if top.min() < 0 or top.max() >= counts.size:
        raise ValueError(f"top holds item indices outside [0, {counts.size}) of item_counts")
    return counts


def item_counts(train_items_idx: Any, n_items: int) -> np.ndarray:
    """(n_items,) how often each item occurs among the training interactions."""
    items = np.asarray(train_items_idx)
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"train_items_idx must lie in [0, {n_items}), got values in [{items.min()}, {items.max()}]")
    return np.bincount(items.astype(np.int64), minlength=int(n_items)).astype(np.float64)


def coverage(top: Any, n_items: int) -> float:
    """Catalogue coverage@k: the share of the ``n_items`` catalogue that reaches at least one user's top k."""
    lists = _top(top)
    if int(n_items) < 1 or lists.max() >= int(n_items) or lists.min() < 0:
        raise ValueError(f"n_items must be positive and every item index in [0, n_items), got n_items={n_items}")
    return float(np.unique(lists).size / int(n_items))


def novelty(top: Any, item_counts: Any, smoothing: float = 1.0) -> np.ndarray:
    """Per user, the mean self-information ``-log2 p(i)`` of the recommended items, in bits.

    ``p(i)`` is item i's share of the training interactions, add-``smoothing`` smoothed,
    ``(count_i + s) / (total + s * n_items)``, so an item never seen in training has a finite,
    highest novelty (``smoothing=0`` refuses such an item). Higher: less popular items.
    """
    lists = _top(top)
    counts = _counts(item_counts, lists)
    if smoothing < 0:
        raise ValueError(f"smoothing must be non-negative, got {smoothing}")
    share = (counts + smoothing) / (counts.sum() + smoothing * counts.size)
    if (share[lists] <= 0).any():
        raise ValueError("a recommended item has no training interaction: its self-information is infinite; use smoothing > 0")
    return -np.log2(share[lists]).mean(axis=1)


def popular_items(item_counts: Any, top_fraction: float = 0.2) -> np.ndarray:
    """Indices of the ``ceil(top_fraction * n_items)`` most popular items (ties: the lower index first)."""
    counts = np.asarray(item_counts, dtype=np.float64)
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    n_head = int(np.ceil(top_fraction * counts.size))
    return np.argsort(-counts, kind="stable")[:n_head]


def popular_share(top: Any, item_counts: Any, top_fraction: float = 0.2) -> np.ndarray:
    """Per user, the share of the recommended items that are among the ``top_fraction`` most popular (``popular_items``)."""
    lists = _top(top)
    counts = _counts(item_counts, lists)
    head = np.zeros(counts.size, dtype=bool)
    head[popular_items(counts, top_fraction)] = True
    return head[lists].mean(axis=1)


def beyond_accuracy(top: Any, item_counts: Any, top_fraction: float = 0.2, smoothing: float = 1.0) -> dict[str, Any]:
    """``{coverage, novelty, popular_share}``: the catalogue share recommended, and the two per-user arrays (``report``-ready)."""
    counts = np.asarray(item_counts, dtype=np.float64)
    return {"coverage": coverage(top, counts.size), "novelty": novelty(top, counts, smoothing),
            "popular_share": popular_share(top, counts, top_fraction)}
