"""Last-item item-to-item k-NN: what people who had the user's most recent item also had, a strong and cheap next-item baseline.

Item similarity is the cosine between items' columns of the (history x item) training
matrix; each item keeps its ``k`` most similar neighbours. A history is scored by its last
item's neighbours, and every other item by a thousandth of its normalised popularity, so
items no neighbour reaches still come in a sensible order (and a history whose last item
nobody else had gets the popularity ranking).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from cdtl.models.sequential.batches import item_counts


class LastItemKNN:
    """``score_histories(seq)``: cosine similarity of every item to the history's last item (top ``k`` kept), plus a
    popularity tie-break."""

    def __init__(self, histories: list[np.ndarray], n_items: int, k: int = 100) -> None:
        if k < 1:
            raise ValueError(f"k must be a positive number of neighbours, got {k}")
        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories]) if histories else np.zeros(0, np.int64)
        matrix = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(histories), n_items))
        matrix.data[:] = 1.0  # an item twice in one history counts once
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(0))).ravel()
        norms[norms == 0] = 1.0
        sim = (matrix.T @ matrix).tocsr().astype(np.float32)
        sim = sp.diags(1 / norms) @ sim @ sp.diags(1 / norms)
        sim.setdiag(0)
        self.similarity = _keep_top(sim.tocsr(), k)
        counts = item_counts(histories, n_items)
        self.prior = torch.from_numpy(1e-3 * counts / max(counts.max(), 1.0)).float()
        self.n_items, self.k = n_items, k

    def score_histories(self, seq: Tensor) -> Tensor:
        """(B, n_items) scores after each padded history (item index + 1, 0 pads)."""
        last = seq[:, -1].cpu().numpy() - 1
        scores = self.prior.expand(len(last), -1).clone()
        have = last >= 0
        if have.any():
            scores[torch.from_numpy(have)] += torch.from_numpy(self.similarity[last[have]].toarray())
        return scores


def _keep_top(sim: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's ``k`` largest entries."""
    rows, cols, vals = [], [], []
    for r in range(sim.shape[0]):
        start, end = sim.indptr[r], sim.indptr[r + 1]
        data, idx = sim.data[start:end], sim.indices[start:end]
        if len(data) > k:
            keep = np.argpartition(-data, k)[:k]
            data, idx = data[keep], idx[keep]
        rows.append(np.full(len(data), r))
        cols.append(idx)
        vals.append(data)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=sim.shape)
