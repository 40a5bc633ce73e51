"""DropoutNet (Volkovs, Yu and Poutanen, NeurIPS 2017): ids and text in one model, the ids dropped out in training so
a new item or user is scored from text alone.

One network serves warm and cold alike. Each side reads two inputs, a **preference** input
(its id embedding) and a **content** input (text):

    item j:  v_j = f_I([m_j w_j ; e_j - mu]),        c_j = m_j b_j + h^T (e_j - mu)
    user u:  z_u = f_U([n_u p_u ; s_u - mu])
    score:   y_uj = z_u^T v_j + c_j

with w_j, b_j, p_u learned id embeddings and biases, e_j the item's frozen text vector, s_u
the mean text vector of the user's training history (both domains), mu the catalogue's mean
text vector, and f_I, f_U two-layer networks. m_j and n_u are 0/1 **id masks**: an item
without training interactions (a new item) has m_j = 0 always, a user without target
training history (a cold user) n_u = 0; while training, each id is also dropped with
probability ``item_dropout`` / ``user_dropout`` (drawn per batch), which is DropoutNet's
idea: the network must learn to score from content alone, so a missing id degrades it
gracefully to a text model instead of feeding it an untrained vector.

Training is a full softmax over the **training items only** (those with m_j = 1): a new
item never appears in training, not even as a negative.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.models.layers import mlp
from cdtl.models.transfer.base import frozen


class DropoutNet(nn.Module):
    """ID + text scorer with id dropout (see the module docstring); ``loss`` is ``cdtl.train``'s contract.

    ``item_text`` (n_items, D): text vectors of the target catalogue; ``item_known`` (n_items,)
    bool: items with training interactions (their ids train; the others are new).
    ``user_text`` (n_users, D): mean text of each user's training history (zeros without one);
    ``user_known`` (n_users,) bool: users with target training interactions. Batches are
    (user, item) pairs of training interactions (``cdtl.models.batches.softmax_batches``).
    """

    def __init__(self, item_text: Tensor, item_known: Tensor, user_text: Tensor, user_known: Tensor, *,
                 dim: int = 64, hidden: int = 256, item_dropout: float = 0.5, user_dropout: float = 0.5,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if item_text.dim() != 2 or user_text.dim() != 2 or item_text.shape[1] != user_text.shape[1]:
            raise ValueError(f"item_text (n_items, D) and user_text (n_users, D) must share D, got "
                             f"{tuple(item_text.shape)} and {tuple(user_text.shape)}")
        if item_known.shape != (len(item_text),) or user_known.shape != (len(user_text),):
            raise ValueError("item_known and user_known need one flag per item and per user")
        if not bool(item_known.any()):
            raise ValueError("no item has training interactions (item_known is all False): nothing to train on")
        for name, p in (("item_dropout", item_dropout), ("user_dropout", user_dropout), ("dropout", dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {p}")
        d_text = item_text.shape[1]
        centre = item_text.float()[item_known.bool()].mean(0)  # fitted on training items: new items add nothing
        self.register_buffer("item_text", frozen(item_text - centre))
        self.register_buffer("user_text", frozen(user_text - centre))
        self.register_buffer("centre", frozen(centre))
        self.register_buffer("item_known", item_known.bool().clone())
        self.register_buffer("user_known", user_known.bool().clone())
        self.item_dropout, self.user_dropout = float(item_dropout), float(user_dropout)
        self.item_id = nn.Embedding(len(item_text), dim)
        self.item_bias = nn.Embedding(len(item_text), 1)
        self.user_id = nn.Embedding(len(user_text), dim)
        nn.init.normal_(self.item_id.weight, std=0.01)
        nn.init.normal_(self.user_id.weight, std=0.01)
        nn.init.zeros_(self.item_bias.weight)
        self.item_net = mlp([dim + d_text, hidden, dim], dropout)
        self.user_net = mlp([dim + d_text, hidden, dim], dropout)
        self.text_bias = nn.Linear(d_text, 1)

    def _mask(self, known: Tensor, p: float) -> Tensor:
        """The id mask: known ids, each dropped with probability p while training."""
        keep = known.float()
        if self.training and p > 0:
            keep = keep * (torch.rand(keep.shape, device=keep.device) >= p).float()
        return keep.unsqueeze(-1)

    def item_side(self, items: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(vectors (n, dim), biases (n,)) of ``items`` (None: the whole catalogue)."""
        idx = torch.arange(len(self.item_text), device=self.item_text.device) if items is None else items
        m = self._mask(self.item_known[idx], self.item_dropout)
        e = self.item_text[idx]
        v = self.item_net(torch.cat([m * self.item_id(idx), e], -1))
        return v, m.squeeze(-1) * self.item_bias(idx).squeeze(-1) + self.text_bias(e).squeeze(-1)

    def user_vectors(self, text: Tensor, ids: Tensor | None = None) -> Tensor:
        """(B, dim) users from their history text (``text`` already centred) and, where known, their ids."""
        if ids is None:
            pref = text.new_zeros(len(text), self.user_id.embedding_dim)
        else:
            pref = self._mask(self.user_known[ids], self.user_dropout) * self.user_id(ids)
        return self.user_net(torch.cat([pref, text], -1))

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Full softmax of each training pair's item among the training items (new items are never candidates)."""
        users, items = batch["user"], batch["item"]
        distinct, inverse = torch.unique(users, return_inverse=True)
        z = self.user_vectors(self.user_text[distinct], distinct)
        v, c = self.item_side(None)
        logits = (z @ v.T + c).masked_fill(~self.item_known, float("-inf"))
        return F.cross_entropy(logits[inverse], items)

    @torch.no_grad()
    def score_all(self, users: Tensor) -> Tensor:
        """(len(users), n_items) scores of the model's own users (ids where known, their history text)."""
        was = self.training
        self.eval()
        users = users.to(self.item_text.device)
        z = self.user_vectors(self.user_text[users], users)
        v, c = self.item_side(None)
        self.train(was)
        return z @ v.T + c

    @torch.no_grad()
    def score_text_users(self, user_text: Tensor) -> Tensor:
        """(B, n_items) scores of users known only by a history text vector (B, D), e.g. few-shot users: no id."""
        was = self.training
        self.eval()
        z = self.user_vectors(user_text.to(self.centre.device).float() - self.centre)
        v, c = self.item_side(None)
        self.train(was)
        return z @ v.T + c


__all__ = ["DropoutNet"]
