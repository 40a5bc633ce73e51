"""A SASRec that reads a user's two domains merged in time order and knows the domain of every item it reads and ranks.

C2DSR's setting (Cao et al., CIKM 2022): a shopper's food and kitchen purchases form one
history, and the next food item is predicted from all of it. The model is SASRec
(``cdtl.models.sequential.SASRec``) with one change at the input and one at the output:

- input: position t's vector is item embedding + position embedding + a learned **domain
  embedding** (one vector for source items, one for target items), so attention can tell a
  kitchen purchase from a food one even for items it has rarely seen;
- output: the next item is predicted by a softmax over the items **of its own domain** (a
  source item among source items, a target item among target items), as C2DSR's two
  domain heads do, and only target items are scored for ranking (source items get minus
  infinity), since the target domain is what the model recommends.

``source_loss_weight`` weighs the positions whose next item is a source item (0: learn from
source items only as context; 1: every position counts alike). With ``negatives`` in a
batch the loss is the base class's log-Q sampled softmax over both domains instead.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.models.sequential.base import NextItemModel, PositionalItems
from cdtl.models.sequential.transformer import CausalTransformer

SOURCE, TARGET = 1, 2  # domain codes of the input; 0 is padding


class CrossDomainSASRec(NextItemModel):
    """Item + domain + position embeddings of a merged history -> causal transformer -> within-domain softmax.

    ``is_target[j]`` says whether item j (a row of the merged catalogue) belongs to the target
    domain. ``domain_embedding=False`` keeps everything but the domain vectors (the control
    that tells what knowing the domain at the input is worth).
    """

    def __init__(self, is_target: np.ndarray | Tensor, dim: int = 64, *, max_len: int = 50, layers: int = 2,
                 heads: int = 1, dropout: float = 0.2, source_loss_weight: float = 1.0,
                 domain_embedding: bool = True) -> None:
        super().__init__()
        flags = torch.as_tensor(np.asarray(is_target)).bool().flatten()
        if len(flags) < 1 or dim < 1 or max_len < 1:
            raise ValueError(f"is_target (one flag per item), dim and max_len must be non-empty/positive, got "
                             f"{len(flags)} items, dim {dim}, max_len {max_len}")
        if not flags.any():
            raise ValueError("is_target marks no item as a target-domain item: there would be nothing to rank")
        if not 0.0 <= float(source_loss_weight) <= 1.0:
            raise ValueError(f"source_loss_weight must be in [0, 1], got {source_loss_weight!r}")
        self.n_items, self.dim, self.max_len = len(flags), dim, max_len
        self.source_loss_weight = float(source_loss_weight)
        codes = torch.where(flags, TARGET, SOURCE)
        self.register_buffer("codes", torch.cat([torch.zeros(1, dtype=torch.long), codes]), persistent=False)
        self.register_buffer("target_columns", torch.nonzero(flags).flatten(), persistent=False)
        self.register_buffer("source_columns", torch.nonzero(~flags).flatten(), persistent=False)
        local = torch.zeros(len(flags), dtype=torch.long)  # an item's column among the items of its own domain
        local[self.target_columns] = torch.arange(len(self.target_columns))
        local[self.source_columns] = torch.arange(len(self.source_columns))
        self.register_buffer("local", local, persistent=False)
        self.embedding = nn.Embedding(len(flags) + 1, dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.domain = nn.Embedding(3, dim, padding_idx=0) if domain_embedding else None
        if self.domain is not None:
            nn.init.normal_(self.domain.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
            if self.domain is not None:
                self.domain.weight[0].zero_()
        self.inputs = PositionalItems(dim, max_len, dropout)
        self.transformer = CausalTransformer(dim, layers, heads, dropout)

    def input_table(self) -> Tensor:
        """(n_items + 1, d) input vector of every item: its embedding plus its domain's (row 0, padding, stays zero)."""
        if self.domain is None:
            return self.embedding.weight
        return self.embedding.weight + self.domain(self.codes)

    def encode(self, seq: Tensor, items: Tensor | None = None) -> Tensor:
        return self.transformer(self.inputs(seq, self.input_table()), seq)

    def item_vectors(self) -> Tensor:
        return self.embedding.weight[1:]

    def _domain_loss(self, hidden: Tensor, target: Tensor, items: Tensor, columns: Tensor) -> Tensor:
        """Per-position cross-entropy of ``target`` among the items ``columns`` (one domain)."""
        return F.cross_entropy(self.logits(hidden, items[columns]), self.local[target], reduction="none")

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Mean next-item cross-entropy, each position's softmax over its next item's domain (source positions weighed)."""
        if "negatives" in batch:
            return self.next_item_loss(batch)
        seq, pos = batch["seq"], batch["pos"]
        items = self.item_vectors()
        hidden = self.encode(seq, items)[pos > 0]
        target = pos[pos > 0] - 1
        to_target = self.codes[target + 1] == TARGET
        total = hidden.new_zeros(())
        weight = hidden.new_zeros(())
        if to_target.any():
            total = total + self._domain_loss(hidden[to_target], target[to_target], items, self.target_columns).sum()
            weight = weight + to_target.sum()
        if self.source_loss_weight > 0 and (~to_target).any():
            ce = self._domain_loss(hidden[~to_target], target[~to_target], items, self.source_columns)
            total = total + self.source_loss_weight * ce.sum()
            weight = weight + self.source_loss_weight * (~to_target).sum()
        if weight == 0:  # a batch with only source positions and source_loss_weight 0: nothing to learn, but a graph
            return hidden.sum() * 0.0
        return total / weight

    def score_histories(self, seq: Tensor) -> Tensor:
        """(B, n_items): scores of the target-domain items after each merged history; source items get minus infinity."""
        seq = seq.to(self.embedding.weight.device)
        items = self.item_vectors()
        hidden = self.encode(seq, items)[:, -1]
        scores = torch.full((len(seq), self.n_items), float("-inf"), device=seq.device, dtype=hidden.dtype)
        scores[:, self.target_columns] = self.logits(hidden, items[self.target_columns])
        return scores
