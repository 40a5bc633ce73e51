"""Users' histories as arrays: one layout (CSR, oldest first) that every stage reads, from the data up.

Histories come in one of two shapes, both in chronological order (oldest first) unless
``timestamps`` say otherwise:

- a list with one array of item indices per user: ``[np.array([3, 1]), np.array([2])]``;
- CSR-like: a tuple ``(indptr, indices)`` - user u's items are ``indices[indptr[u]:indptr[u + 1]]`` -
  or a scipy.sparse CSR matrix (whose rows are sorted by item index, not by time: pass
  ``timestamps`` aligned with its ``indices`` for any order-aware use).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

EMPTY = ("raise", "zeros")

Histories = Any  # list of 1-D index arrays, a tuple (indptr, indices), or a scipy CSR matrix


# --------------------------------------------------------------------------- histories


def history_csr(histories: Histories, n_items: int | None = None, timestamps: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) as int64 arrays, each user's items in chronological order (oldest first).

    ``timestamps`` (optional) gives a time or position per interaction, shaped like the
    histories (one array per user, or one flat array aligned with ``indices``); each
    user's items are sorted by it (stably, so ties keep their given order). With
    ``n_items`` every index is checked to lie in ``[0, n_items)``.
    """
    if hasattr(histories, "indptr") and hasattr(histories, "indices"):  # scipy.sparse CSR
        indptr, indices = _csr_arrays(histories.indptr, histories.indices)
    elif isinstance(histories, tuple):
        if len(histories) != 2:
            raise ValueError(
                f"histories as a tuple must be (indptr, indices), got a tuple of {len(histories)}; "
                "pass a list for one index array per user"
            )
        indptr, indices = _csr_arrays(*histories)
    elif isinstance(histories, (list, np.ndarray)) or (isinstance(histories, Sequence) and not isinstance(histories, str)):
        rows = [_index_array(h, f"histories[{u}]") for u, h in enumerate(histories)]
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    else:
        raise TypeError(
            "histories must be a list of index arrays (one per user), a tuple (indptr, indices) "
            f"or a scipy CSR matrix, got {type(histories).__name__}"
        )
    if n_items is not None and indices.size and (indices.min() < 0 or indices.max() >= n_items):
        raise ValueError(f"histories hold item indices in [{indices.min()}, {indices.max()}], expected [0, {n_items})")
    if timestamps is not None:
        indices = indices[_chronological_order(indptr, timestamps)]
    return indptr, indices


def _index_array(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values.cpu() if isinstance(values, Tensor) else values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of item indices, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integer item indices, got dtype {array.dtype}")
    return array.astype(np.int64)


def _csr_arrays(indptr: Any, indices: Any) -> tuple[np.ndarray, np.ndarray]:
    indptr, indices = _index_array(indptr, "indptr"), _index_array(indices, "indices")
    if indptr.size == 0 or indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != indices.size:
        raise ValueError(
            "indptr must start at 0, never decrease and end at len(indices) "
            f"({indices.size}); got {indptr[:5].tolist()}{' ...' if indptr.size > 5 else ''}. "
            "For one index array per user, pass a list instead of a tuple"
        )
    return indptr, indices


def _chronological_order(indptr: np.ndarray, timestamps: Any) -> np.ndarray:
    """The permutation of the flat interactions that sorts each user's items by timestamp, stably."""
    if isinstance(timestamps, (list, tuple)) and timestamps and np.ndim(timestamps[0]) == 1:
        flat = np.concatenate([np.asarray(t) for t in timestamps])
    else:
        flat = np.asarray(timestamps.cpu() if isinstance(timestamps, Tensor) else timestamps)
    if flat.shape != (int(indptr[-1]),):
        raise ValueError(f"timestamps must give one value per interaction ({int(indptr[-1])}), got shape {flat.shape}")
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return np.lexsort((np.arange(flat.size), flat, rows))  # by user, then time, then given order


def check_empty(indptr: np.ndarray, empty: str) -> np.ndarray:
    """The number of items of each user; empty histories raise unless ``empty="zeros"``."""
    if empty not in EMPTY:
        raise ValueError(f"empty must be one of {EMPTY}, got {empty!r}")
    counts = np.diff(indptr)
    if empty == "raise" and (counts == 0).any():
        users = np.flatnonzero(counts == 0)
        raise ValueError(
            f"{users.size} of {counts.size} users have an empty history, e.g. users {users[:5].tolist()}; "
            "drop them, or pass empty='zeros' to give them a zero vector"
        )
    return counts


def pad_histories(
    histories: Histories,
    max_len: int | None = None,
    *,
    timestamps: Any = None,
    n_items: int | None = None,
    empty: str = "raise",
) -> tuple[Tensor, Tensor]:
    """(items, mask): (n_users, L) int64 item indices and a bool mask, for batched pooling.

    Each row holds the user's ``max_len`` most recent items (all of them for ``None``),
    oldest first, left-aligned; padding positions hold item 0 and mask False.
    """
    if max_len is not None and (isinstance(max_len, bool) or int(max_len) < 1):
        raise ValueError(f"max_len must be a positive integer or None, got {max_len!r}")
    indptr, indices = history_csr(histories, n_items, timestamps)
    counts = check_empty(indptr, empty)
    kept = counts if max_len is None else np.minimum(counts, int(max_len))
    width = max(int(kept.max()) if kept.size else 0, 1)
    rows = np.repeat(np.arange(kept.size), kept)
    cols = np.arange(int(kept.sum())) - np.repeat(np.cumsum(kept) - kept, kept)
    source = np.repeat(indptr[1:] - kept, kept) + cols  # the last `kept` items of each row
    items = torch.zeros(kept.size, width, dtype=torch.int64)
    mask = torch.zeros(kept.size, width, dtype=torch.bool)
    items[rows, cols] = torch.from_numpy(indices[source])
    mask[rows, cols] = True
    return items, mask


__all__ = ["EMPTY", "Histories", "check_empty", "history_csr", "pad_histories"]
