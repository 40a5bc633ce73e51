"""Content-based k-nearest neighbours (Lops, de Gemmis and Semeraro, Recommender Systems Handbook 2011): a user's
history against each candidate's text.

The honest baseline for an item nobody has touched: nothing is trained, and an item is
described by its text vector alone. For user u with history H_u and candidate item j,

    s(u, j) = mean of the k largest cos(e_h, e_j) over h in H_u      (k = None: over all of H_u)

where e are item vectors (a language model's, frozen or tuned; or any other vectors, e.g.
an MF model's item factors for an id-based k-NN). With k = 1 a candidate scores by its
single closest history item; with all of H_u it is the mean similarity, which ranks like
the cosine with the user's mean vector when vectors are normalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cdtl.data.histories import pad_histories


class ContentKNN:
    """``score_all(users)``: (len(users), n_candidates) k-NN scores of each user's history against each candidate.

    ``item_vectors`` (n_items, D) covers every item a history or a candidate may name (items
    of both domains, in one index). ``histories[u]`` holds user u's item rows, oldest first
    (a list of arrays or CSR-like, ``cdtl.encoders.users``); its ``max_history`` most recent
    items are used. ``candidates`` are the rows to rank (column c of the scores is item
    ``candidates[c]``; default every row). A user with an empty history has no neighbours:
    their row is all zeros and ``has_history`` is False (give them a fallback).
    """

    def __init__(self, item_vectors: Tensor, histories: Any, *, candidates: Sequence[int] | np.ndarray | None = None,
                 k: int | None = 10, max_history: int | None = 100, chunk: int = 64) -> None:
        if item_vectors.dim() != 2:
            raise ValueError(f"item_vectors must be (n_items, D), got shape {tuple(item_vectors.shape)}")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"k must be a positive integer or None (all history items), got {k!r}")
        self.vectors = F.normalize(item_vectors.float(), dim=-1)
        rows = np.arange(len(item_vectors)) if candidates is None else np.asarray(candidates, dtype=np.int64)
        if rows.size == 0 or rows.min() < 0 or rows.max() >= len(item_vectors):
            raise ValueError(f"candidates must be non-empty rows of item_vectors, in [0, {len(item_vectors)})")
        self.candidates = torch.as_tensor(rows)
        self.items, self.mask = pad_histories(histories, max_history, n_items=len(item_vectors), empty="zeros")
        self.has_history = self.mask.any(1).numpy()
        self.k, self.chunk = k, int(chunk)

    def score_all(self, users: Tensor) -> Tensor:
        """(len(users), n_candidates) float32 scores (see the module docstring)."""
        users = torch.as_tensor(users, dtype=torch.long)
        cand = self.vectors[self.candidates]  # (N, D)
        out = torch.zeros(len(users), len(cand))
        for start in range(0, len(users), self.chunk):
            who = users[start:start + self.chunk]
            items, mask = self.items[who], self.mask[who]  # (B, L)
            sims = torch.einsum("bld,nd->bln", self.vectors[items], cand)  # (B, L, N)
            sims = sims.masked_fill(~mask.unsqueeze(-1), float("-inf"))
            n = mask.sum(1).clamp(min=1).unsqueeze(1)  # (B, 1): history lengths
            if self.k is not None and self.k < sims.shape[1]:
                sims = sims.topk(self.k, dim=1).values  # (B, k, N): the k closest history items of each candidate
                n = n.clamp(max=self.k)
            out[start:start + len(who)] = sims.nan_to_num(0.0, neginf=0.0).sum(1) / n
        return out


__all__ = ["ContentKNN"]
