"""The language-model bridge: items of both domains share one text space, so a user's source history places them among target items."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cdtl.encoders.whitening import MoEAdaptor, PCAWhitening
from cdtl.models.transfer.base import TargetScorer, frozen, mlp

ADAPTORS = ("linear", "moe")


class LMBridge(TargetScorer):
    """Users and target items in the language model's space, with two small learned maps on top.

    - item j: its frozen text vector ``e_j`` (``cdtl.encoders.catalogue.encode_items``) through a
      learned adaptor ``A`` (linear, or UniSRec's mixture of whitening experts ``"moe"``):
      ``w_j = A(e_j - m)``, and a text bias ``c_j = h^T (e_j - m)``; m centres the catalogue;
    - user u: the mean text vector of their **source** history, ``s_u``, through a user tower
      ``u = MLP(s_u - m)``.

    ``y_uj = g + c_j + u^T w_j`` (no per-user or per-item vector at all). With ``item_bias`` a
    learned per-item bias is added to ``c_j``: the one thing text cannot tell, how popular an
    item is; an item without training interactions keeps a bias of 0 and is placed by its
    text alone. Training uses
    the warm users' target interactions (``loss``: ``"mse"`` or ``"bpr"``) with each warm
    user represented, like a cold one, by the source history alone; so a cold user needs
    nothing but source history, and a target item needs nothing but a text: items with few or
    no training interactions get a vector as good as their text.

    ``item_text`` is (n_target_items, D); ``user_text`` is (n_users, D), zero for a user with
    no source history (the caller must give them the declared fallback). ``whiten`` first
    applies chapter 03's PCA whitening, fitted on the target catalogue, to both.
    """

    def __init__(self, item_text: Tensor, user_text: Tensor, *, dim: int = 64, hidden: int = 256,
                 adaptor: str = "linear", n_experts: int = 8, dropout: float = 0.1, item_bias: bool = True,
                 whiten: bool = False, loss: str = "bpr",
                 global_mean: float = 0.0, rating_scale: tuple[float, float] | None = None) -> None:
        super().__init__(loss, global_mean=global_mean, rating_scale=rating_scale)
        if adaptor not in ADAPTORS:
            raise ValueError(f"adaptor must be one of {ADAPTORS}, got {adaptor!r}")
        if item_text.dim() != 2 or user_text.dim() != 2 or item_text.shape[1] != user_text.shape[1]:
            raise ValueError(f"item_text (n_items, D) and user_text (n_users, D) must share D, got "
                             f"{tuple(item_text.shape)} and {tuple(user_text.shape)}")
        d_text = item_text.shape[1]
        if whiten:  # PCA whitening fitted on the target catalogue (chapter 03), applied to items and users alike
            whitening = PCAWhitening().fit(item_text.float())
            item_text, user_text = whitening.transform(item_text.float()), whitening.transform(user_text.float())
        centre = item_text.float().mean(0)
        self.register_buffer("item_text", frozen(item_text - centre))
        self.register_buffer("user_text", frozen(user_text - centre))
        self.adaptor = (nn.Sequential(nn.Dropout(dropout), nn.Linear(d_text, dim)) if adaptor == "linear"
                        else MoEAdaptor(d_text, dim, n_experts, dropout=dropout))
        self.text_bias = nn.Linear(d_text, 1)
        self.item_bias = nn.Embedding(len(item_text), 1) if item_bias else None
        if self.item_bias is not None:
            nn.init.zeros_(self.item_bias.weight)
        self.user_tower = mlp(d_text, hidden, dim, dropout)

    def user_side(self, users: Tensor) -> tuple[Tensor, Tensor]:
        u = self.user_tower(self.user_text[users])
        return u, u.new_zeros(u.shape[0])

    def item_side(self, items: Tensor | None) -> tuple[Tensor, Tensor]:
        e = self.item_text if items is None else self.item_text[items]
        bias = self.text_bias(e).squeeze(-1)
        if self.item_bias is not None:
            bias = bias + (self.item_bias.weight.squeeze(-1) if items is None else self.item_bias(items).squeeze(-1))
        return self.adaptor(e), bias


class PTUPCDRText(TargetScorer):
    """ID + text: PTUPCDR's personal bridge and the LM bridge side by side, trained together.

    The user is ``[u_ptupcdr ; u_lm]`` and the item ``[w_j ; A(e_j)]``, so the score is the sum
    of both models' scores (one global bias): ids carry what co-watching taught the target MF,
    text carries what the titles and genres say, which matters most for items with little history.
    """

    def __init__(self, ptupcdr: TargetScorer, lm_bridge: LMBridge) -> None:
        if ptupcdr.loss_name != lm_bridge.loss_name:
            raise ValueError(f"both parts must train with one loss, got {ptupcdr.loss_name!r} and {lm_bridge.loss_name!r}")
        super().__init__(ptupcdr.loss_name, global_mean=float(ptupcdr.global_bias.detach()), rating_scale=ptupcdr.rating_scale)
        self.ids, self.text = ptupcdr, lm_bridge

    def user_side(self, users: Tensor) -> tuple[Tensor, Tensor]:
        (u1, b1), (u2, b2) = self.ids.user_side(users), self.text.user_side(users)
        return torch.cat([u1, u2], -1), b1 + b2

    def item_side(self, items: Tensor | None) -> tuple[Tensor, Tensor]:
        (w1, c1), (w2, c2) = self.ids.item_side(items), self.text.item_side(items)
        return torch.cat([w1, w2], -1), c1 + c2
