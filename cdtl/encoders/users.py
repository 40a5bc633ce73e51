"""A user is what they consumed: user vectors in the language model's space, pooled from the embeddings of their history.

Three poolings of a user's history of item embeddings, from fixed to learned:

- ``mean_pool``: every item counts the same;
- ``recency_pool``: an item ``r`` steps before the most recent one weighs ``2 ** (-r / half_life)``,
  weights normalised to sum to 1 per user;
- ``AttentionPool``: a learnable query attends over the history (padding masked), for use
  inside models trained with ``cdtl.train.fit``. It starts as the mean and learns which items matter.

and ``profile_text``, the other road: write the history as one text ("Watched: A; B; C")
and encode that with ``TextEncoder`` like any item.

Histories come in the layouts of ``cdtl.data.histories`` (a list of index arrays per user, CSR, or
a scipy CSR matrix), oldest first unless ``timestamps`` say otherwise.

A user with no history has nothing to pool: that raises a ValueError saying how many
users are empty, unless ``empty="zeros"`` gives them a zero vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cdtl.data.histories import EMPTY, Histories, check_empty, history_csr, pad_histories


def _check_item_emb(item_text: Tensor) -> None:
    if not isinstance(item_text, Tensor) or item_text.dim() != 2:
        got = tuple(item_text.shape) if isinstance(item_text, Tensor) else type(item_text).__name__
        raise ValueError(f"item_text must be a 2-D tensor (n_items, d), got {got}")


# --------------------------------------------------------------------------- fixed poolings


def _weighted_sum(item_text: Tensor, indptr: np.ndarray, indices: np.ndarray, weights: Tensor) -> Tensor:
    """Per user, the sum of weights * item_text[items]: one gather and one index_add for everyone."""
    device = item_text.device
    rows = torch.from_numpy(np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))).to(device)
    gathered = item_text[torch.from_numpy(indices).to(device)] * weights.to(device, item_text.dtype).unsqueeze(1)
    out = torch.zeros(len(indptr) - 1, item_text.shape[1], dtype=item_text.dtype, device=device)
    return out.index_add_(0, rows, gathered)


def mean_pool(item_text: Tensor, histories: Histories, *, empty: str = "raise") -> Tensor:
    """(n_users, d): the mean of the embeddings of each user's items (a repeated item counts each time)."""
    _check_item_emb(item_text)
    indptr, indices = history_csr(histories, item_text.shape[0])
    counts = check_empty(indptr, empty)
    weights = torch.from_numpy(1.0 / np.repeat(counts, counts).astype(np.float64))
    return _weighted_sum(item_text, indptr, indices, weights)


def recency_weights(histories: Histories, half_life: float, *, timestamps: Any = None, empty: str = "raise") -> Tensor:
    """The weight of every interaction, aligned with ``history_csr(histories, timestamps=timestamps)[1]``.

    The most recent item of a user has rank r = 0, the one before r = 1, and so on; its
    weight is ``2 ** (-r / half_life)``, normalised so each user's weights sum to 1.
    """
    if isinstance(half_life, bool) or not isinstance(half_life, (int, float)) or not half_life > 0 or math.isinf(half_life):
        raise ValueError(f"half_life must be a positive, finite number of items, got {half_life!r}")
    indptr, _ = history_csr(histories, timestamps=timestamps)
    counts = check_empty(indptr, empty)
    position = np.arange(int(indptr[-1])) - np.repeat(indptr[:-1], counts)
    rank = np.repeat(counts, counts) - 1 - position  # 0 for the most recent
    raw = np.exp2(-rank / float(half_life))
    totals = np.add.reduceat(raw, indptr[:-1][counts > 0]) if raw.size else raw
    return torch.from_numpy(raw / np.repeat(totals, counts[counts > 0]))


def recency_pool(
    item_text: Tensor, histories: Histories, half_life: float, *, timestamps: Any = None, empty: str = "raise"
) -> Tensor:
    """(n_users, d): each user's items weighted by ``recency_weights`` (half the weight every ``half_life`` items back)."""
    _check_item_emb(item_text)
    indptr, indices = history_csr(histories, item_text.shape[0], timestamps)
    weights = recency_weights((indptr, indices), half_life, empty=empty)
    return _weighted_sum(item_text, indptr, indices, weights)


# --------------------------------------------------------------------------- a learned pooling


class AttentionPool(nn.Module):
    """A learnable query attends over a user's history: ``sum_l softmax_l(q . K x_l / sqrt(d)) x_l``.

    The output is a weighted mean of the history's own embeddings, so it stays in their
    space; the query ``q`` starts at zero, so the pool starts as the plain mean and learns
    which items to weigh up. ``forward(x, mask)`` takes a padded batch: ``x`` (B, L, d)
    and ``mask`` (B, L), True at real items; padding never receives weight. A row with no
    real item raises a ValueError, or pools to zeros with ``empty="zeros"``.
    """

    def __init__(self, dim: int, *, empty: str = "raise") -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer (the embedding size), got {dim!r}")
        if empty not in EMPTY:
            raise ValueError(f"empty must be one of {EMPTY}, got {empty!r}")
        self.dim, self.empty = dim, empty
        self.key = nn.Linear(dim, dim)
        self.query = nn.Parameter(torch.zeros(dim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, empty={self.empty!r}"

    def weights(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, L) attention weights: each row sums to 1 over its real items (0 for an empty row)."""
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"x must be (batch, length, {self.dim}), got shape {tuple(x.shape)}")
        if mask.shape != x.shape[:2]:
            raise ValueError(f"mask must be (batch, length) = {tuple(x.shape[:2])}, got shape {tuple(mask.shape)}")
        mask = mask.bool()
        if self.empty == "raise":
            n_empty = int((~mask.any(1)).sum())
            if n_empty:
                raise ValueError(f"{n_empty} of {mask.shape[0]} users have an empty history; "
                                 "drop them, or build AttentionPool(..., empty='zeros')")
        scores = self.key(x) @ self.query / math.sqrt(self.dim)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)  # exp() of it is exactly 0 ...
        return torch.softmax(scores, dim=-1) * mask  # ... unless the whole row is padding

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, d): the attention-weighted mean of each row's real items."""
        return (self.weights(x, mask).unsqueeze(-1).to(x.dtype) * x).sum(1)

    def pool(self, item_text: Tensor, histories: Histories, max_len: int | None = None, *, timestamps: Any = None) -> Tensor:
        """(n_users, d) for whole histories (their ``max_len`` most recent items), like ``mean_pool``."""
        _check_item_emb(item_text)
        items, mask = pad_histories(histories, max_len, timestamps=timestamps, n_items=item_text.shape[0], empty=self.empty)
        items, mask = items.to(item_text.device), mask.to(item_text.device)
        return self(item_text[items], mask)


# --------------------------------------------------------------------------- a user as text


def profile_text(
    titles: Sequence[str],
    max_items: int = 20,
    most_recent_first: bool = True,
    *,
    prefix: str = "Watched: ",
    sep: str = "; ",
) -> str:
    """A user's "profile text" from the titles of their history (oldest first): ``"Watched: C; B; A"``.

    Keeps the ``max_items`` most recent titles, most recent first (or in chronological
    order with ``most_recent_first=False``), so a text truncated by the encoder's
    ``max_length`` loses the oldest ones. Blank titles are skipped. Encode the result
    with ``TextEncoder.encode`` like an item text.
    """
    if isinstance(titles, str):
        raise TypeError("titles must be a sequence of title strings, got one string; wrap it in a list")
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
        raise ValueError(f"max_items must be a positive integer, got {max_items!r}")
    titles = list(titles)
    wrong = [i for i, t in enumerate(titles) if not isinstance(t, str)]
    if wrong:
        raise TypeError(f"titles must be strings; position {wrong[0]} holds {type(titles[wrong[0]]).__name__} "
                        f"{titles[wrong[0]]!r} ({len(wrong)} such)")
    kept = [t.strip() for t in titles if t.strip()][-max_items:]
    if not kept:
        raise ValueError(f"titles holds no non-blank title ({len(titles)} given): nothing to describe the user with")
    if most_recent_first:
        kept.reverse()
    return prefix + sep.join(kept)


__all__ = [
    "AttentionPool", "history_csr", "mean_pool", "pad_histories", "profile_text", "recency_pool", "recency_weights",
]
