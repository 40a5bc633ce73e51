"""Causal self-attention over a history: position t reads positions up to t, so next-item prediction never sees the future.

One head of attention computes ``softmax(q_t . k_s / sqrt(d))`` over positions s; the causal
mask sets every s > t to minus infinity before the softmax, so the weight of a future item is
exactly zero. Padding positions are masked as keys too; a padded query still attends to itself
(its output is never used), which keeps every softmax row finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def causal_mask(seq: Tensor) -> Tensor:
    """(B, 1, L, L) boolean: query t may attend to key s when s <= t and s is an item (or s == t)."""
    length = seq.shape[1]
    lower = torch.ones(length, length, dtype=torch.bool, device=seq.device).tril()
    allowed = lower.unsqueeze(0) & (seq > 0).unsqueeze(1)
    return (allowed | torch.eye(length, dtype=torch.bool, device=seq.device)).unsqueeze(1)


class CausalBlock(nn.Module):
    """Pre-norm transformer block: x + attention(norm(x)), then x + feed-forward(norm(x))."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.out(att.transpose(1, 2).reshape(b, length, dim)))
        return x + self.drop(self.ff(self.norm2(x)))


class CausalTransformer(nn.Module):
    """``layers`` causal blocks and a final layer norm: (B, L, d) inputs of a padded history -> (B, L, d)."""

    def __init__(self, dim: int, layers: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(CausalBlock(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, seq: Tensor) -> Tensor:
        mask = causal_mask(seq)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)
