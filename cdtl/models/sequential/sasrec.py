"""SASRec (Kang & McAuley, 2018): causal self-attention over item-ID embeddings, trained on the next item at every position.

The history's item embeddings plus learned positions go through ``layers`` causal
transformer blocks (``cdtl.models.sequential.transformer``); the output at the last
position, dotted with every item's embedding, scores the next item. Trained with the full
softmax over the catalogue (or a log-Q sampled one), which Petrov & Macdonald (2023) show
does much better than SASRec's original one negative per position.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cdtl.models.sequential.base import NextItemModel, PositionalItems
from cdtl.models.sequential.transformer import CausalTransformer


class SASRec(NextItemModel):
    """Item-ID embeddings -> positions -> causal transformer -> dot product with the (tied) item embeddings."""

    def __init__(self, n_items: int, dim: int = 64, *, max_len: int = 50, layers: int = 2, heads: int = 1,
                 dropout: float = 0.2) -> None:
        super().__init__()
        if n_items < 1 or dim < 1 or max_len < 1:
            raise ValueError(f"n_items, dim and max_len must be positive, got {n_items}, {dim}, {max_len}")
        self.n_items, self.dim, self.max_len = n_items, dim, max_len
        self.embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.inputs = PositionalItems(dim, max_len, dropout)
        self.transformer = CausalTransformer(dim, layers, heads, dropout)

    def encode(self, seq: Tensor, items: Tensor | None = None) -> Tensor:
        return self.transformer(self.inputs(seq, self.embedding.weight), seq)

    def item_vectors(self) -> Tensor:
        return self.embedding.weight[1:]
