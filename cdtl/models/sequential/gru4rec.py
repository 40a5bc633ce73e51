"""GRU4Rec (Hidasi et al., 2016): a recurrent network reads the history item by item; its state after each item predicts the next.

Item embeddings feed a GRU; the state at position t (which has read items 1..t only) is
projected back to the embedding space and scored against every item's embedding (tied
input and output embeddings), trained with the shared full or sampled softmax.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cdtl.models.sequential.base import NextItemModel


class GRU4Rec(NextItemModel):
    """Embedding -> dropout -> ``layers``-layer GRU -> linear -> dot product with the item embeddings."""

    def __init__(self, n_items: int, dim: int = 64, *, layers: int = 1, dropout: float = 0.2) -> None:
        super().__init__()
        if n_items < 1 or dim < 1 or layers < 1:
            raise ValueError(f"n_items, dim and layers must be positive, got {n_items}, {dim}, {layers}")
        self.n_items, self.dim = n_items, dim
        self.embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(dim, dim, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.project = nn.Linear(dim, dim)

    def encode(self, seq: Tensor, items: Tensor | None = None) -> Tensor:
        # left padding: the GRU reads zero vectors first, then the items, so its last state has read the whole history
        states, _ = self.gru(self.drop(self.embedding(seq)))
        return self.project(states)

    def item_vectors(self) -> Tensor:
        return self.embedding.weight[1:]
