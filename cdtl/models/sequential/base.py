"""What every next-item model shares: read a left-padded history, score every item, learn by softmax over the catalogue.

A model encodes a (B, L) matrix of item index + 1 (0 pads the left; ``cdtl.data.sequential.left_pad``)
into one vector per position, and scores item j by the dot product with ``item_vectors()[j]``
(both L2-normalised and divided by ``temperature`` when ``normalize``). Position t's vector may
read positions up to t only, so one pass over a history trains next-item prediction at
every position at once.

The loss is the full softmax over the catalogue, or, when a batch carries ``negatives``,
a sampled softmax with the log-Q correction: every logit gets ``- log q(item)``, the
probability with which the sampler draws that item, so the sampled loss estimates the full
one without favouring rare items.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class NextItemModel(nn.Module):
    """Base class: subclasses define ``encode(seq) -> (B, L, d)`` and ``item_vectors() -> (n_items, d)``."""

    normalize: bool = False
    temperature: float = 1.0

    def encode(self, seq: Tensor, items: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        """(B, L, d) vectors of a padded history; ``items`` is ``item_vectors()`` when the caller has it already."""
        raise NotImplementedError

    def item_vectors(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _pair(self, hidden: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        if self.normalize:
            return F.normalize(hidden, dim=-1), F.normalize(items, dim=-1)
        return hidden, items

    def logits(self, hidden: Tensor, items: Tensor | None = None) -> Tensor:
        """(..., n_items) scores of every item for each hidden vector."""
        hidden, items = self._pair(hidden, self.item_vectors() if items is None else items)
        return hidden @ items.T / self.temperature

    def next_item_loss(self, batch: dict[str, Tensor], items: Tensor | None = None) -> Tensor:
        """Mean cross-entropy of the next item at every non-padded position (full or log-Q sampled softmax);
        ``items`` is ``item_vectors()`` when the caller has it already."""
        seq, pos = batch["seq"], batch["pos"]
        items = self.item_vectors() if items is None else items
        hidden = self.encode(seq, items)[pos > 0]  # (N, d): positions with a next item
        target = pos[pos > 0] - 1
        if "negatives" not in batch:
            return F.cross_entropy(self.logits(hidden, items), target)
        negatives, log_q = batch["negatives"], batch["log_q"]  # (S,) items drawn from q, (n_items,) log q
        hidden, items = self._pair(hidden, items)
        positive = (hidden * items[target]).sum(-1, keepdim=True) / self.temperature - log_q[target].unsqueeze(1)
        sampled = hidden @ items[negatives].T / self.temperature - log_q[negatives]
        sampled = sampled.masked_fill(negatives.unsqueeze(0) == target.unsqueeze(1), float("-inf"))  # accidental hits
        logits = torch.cat([positive, sampled], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long, device=logits.device))

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        return self.next_item_loss(batch)

    def score_histories(self, seq: Tensor) -> Tensor:
        """(B, n_items) scores of every item as the next one after each history (its last position's vector)."""
        seq = seq.to(next(self.parameters()).device)
        items = self.item_vectors()
        return self.logits(self.encode(seq, items)[:, -1], items)


class PositionalItems(nn.Module):
    """Input vectors of a padded history: item vectors (a row of zeros for padding) plus learned positions, dropout,
    layer norm."""

    def __init__(self, dim: int, max_len: int, dropout: float) -> None:
        super().__init__()
        self.position = nn.Embedding(max_len, dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.position.weight, std=0.02)

    def forward(self, seq: Tensor, table: Tensor) -> Tensor:
        """``table`` is (n_items + 1, d) with row 0 the padding vector; returns (B, L, d)."""
        length = seq.shape[1]
        if length > self.position.num_embeddings:
            raise ValueError(f"history of length {length} exceeds max_len={self.position.num_embeddings}; "
                             "truncate it from the left (cdtl.data.sequential.left_pad)")
        # positions count back from the most recent item, so a short history uses the same ones as a long one's tail
        positions = torch.arange(self.position.num_embeddings - length, self.position.num_embeddings, device=seq.device)
        x = table[seq] + self.position(positions)
        return self.drop(self.norm(x)) * (seq > 0).unsqueeze(-1)
