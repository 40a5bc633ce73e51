"""The language-model bridge: items of both domains share one text space, so a user's source history places them
among target items."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.encoders.users import AttentionPool
from cdtl.encoders.whitening import MoEAdaptor, PCAWhitening
from cdtl.models.layers import mlp
from cdtl.models.transfer.base import TargetScorer, frozen

ADAPTORS = ("linear", "moe")
POOLINGS = ("mean", "attention")


class LMBridge(TargetScorer):
    """Users and target items in the language model's space, with two small learned maps on top.

    - item i: its frozen text vector ``x_i`` (``cdtl.encoders.catalogue.encode_items``) through a
      learned adaptor ``A`` (linear, or UniSRec's mixture of whitening experts ``"moe"``):
      ``q_i = A(x_i - m)``, and a text bias ``b_i = h^T (x_i - m)``; m centres the catalogue;
    - user u: the mean text vector of their **source** history, ``s_u``, through a user tower
      ``p_u = MLP(s_u - m)``; with ``pooling="attention"``, ``s_u`` is instead a learned attention
      pooling of the history's text vectors (``cdtl.encoders.users.AttentionPool``, which starts
      as the mean and learns which source items speak for the user).

    ``y_ui = g + b_i + p_u^T q_i`` (no per-user or per-item vector at all). With ``item_bias`` a
    learned per-item bias is added to ``b_i``: the one thing text cannot tell, how popular an
    item is; an item without training interactions keeps a bias of 0 and is placed by its
    text alone. Training uses the warm users' target interactions (``loss``: ``"mse"``,
    ``"bpr"`` or ``"softmax"``) with each warm user represented, like a cold one, by the
    source history alone; so a cold user needs
    nothing but source history, and a target item needs nothing but a text: items with few or
    no training interactions get a vector as good as their text.

    ``item_text`` is (n_target_items, D); ``user_text`` is (n_users, D), zero for a user with
    no source history (the caller must give them the declared fallback). Attention pooling
    also needs ``source_text`` and ``history``/``history_mask`` (n_users, L) of source item rows
    (``CrossDomainData.source_histories``). ``item_known`` (n_target_items,) bool marks the items
    with training interactions when others are held out as new items: the softmax then ranks
    among the known ones only, and the catalogue is centred on them. ``whiten`` first
    applies chapter 03's PCA whitening, fitted on the target catalogue, to both.

    ``source_text`` (n_source_items, D) with ``source_counts`` adds a second task, for every user with source
    history (not only the warm bridge users): predict each source item from the *rest* of
    the user's source history (leave-one-out mean), through the same user tower and
    adaptor, with the other items of the batch as negatives. Batches tagged
    ``domain`` 0 (``cdtl.models.transfer.domain_batches``) train it, weighted by
    ``source_weight``; it teaches the shared text space which histories lead to which items.
    """

    def __init__(self, item_text: Tensor, user_text: Tensor, *, dim: int = 64, hidden: int = 256,
                 adaptor: str = "linear", n_experts: int = 8, dropout: float = 0.1, item_bias: bool = True,
                 whiten: bool = False, source_text: Tensor | None = None, source_counts: Tensor | None = None,
                 source_weight: float = 1.0, pooling: str = "mean", history: Tensor | None = None,
                 history_mask: Tensor | None = None, item_known: Tensor | None = None, loss: str = "bpr",
                 global_mean: float = 0.0, rating_scale: tuple[float, float] | None = None) -> None:
        super().__init__(loss, global_mean=global_mean, rating_scale=rating_scale)
        if adaptor not in ADAPTORS:
            raise ValueError(f"adaptor must be one of {ADAPTORS}, got {adaptor!r}")
        if item_text.dim() != 2 or user_text.dim() != 2 or item_text.shape[1] != user_text.shape[1]:
            raise ValueError(f"item_text (n_items, D) and user_text (n_users, D) must share D, got "
                             f"{tuple(item_text.shape)} and {tuple(user_text.shape)}")
        d_text = item_text.shape[1]
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if pooling == "attention" and (source_text is None or history is None or history_mask is None
                                       or history.shape != history_mask.shape or len(history) != len(user_text)):
            raise ValueError("pooling='attention' pools the source history's texts: pass source_text and history, "
                             f"history_mask of shape (n_users={len(user_text)}, L)")
        if (source_text is None) != (source_counts is None) and not (pooling == "attention" and source_counts is None):
            raise ValueError("source_text and source_counts come together (the source task needs both)")
        if source_text is not None and (source_text.dim() != 2 or source_text.shape[1] != item_text.shape[1]):
            raise ValueError(f"source_text must be (n_source_items, {item_text.shape[1]}), got {tuple(source_text.shape)}")
        if source_counts is not None and source_counts.shape != (user_text.shape[0],):
            raise ValueError(f"source_counts must be ({user_text.shape[0]},), got {tuple(source_counts.shape)}")
        if whiten:  # PCA whitening fitted on the target catalogue (chapter 03), applied to items and users alike
            whitening = PCAWhitening().fit(item_text.float())
            item_text, user_text = whitening.transform(item_text.float()), whitening.transform(user_text.float())
            if source_text is not None:
                source_text = whitening.transform(source_text.float())
        if item_known is not None and (item_known.shape != (len(item_text),) or not bool(item_known.any())):
            raise ValueError(f"item_known must be ({len(item_text)},) bool with at least one known item")
        centre = item_text.float()[item_known.bool()].mean(0) if item_known is not None else item_text.float().mean(0)
        self.register_buffer("item_text", frozen(item_text - centre))
        self.register_buffer("user_text", frozen(user_text - centre))
        self.source_weight = float(source_weight)
        if source_text is not None:
            self.register_buffer("source_text", frozen(source_text - centre))
        if source_counts is not None:
            self.register_buffer("source_counts", frozen(source_counts))
        if item_known is not None:
            self.register_buffer("item_known", item_known.bool().clone())
        if pooling == "attention":
            self.register_buffer("history", history.long().clone())
            self.register_buffer("history_mask", history_mask.bool().clone())
        self.adaptor = (nn.Sequential(nn.Dropout(dropout), nn.Linear(d_text, dim)) if adaptor == "linear"
                        else MoEAdaptor(d_text, dim, n_experts, dropout=dropout))
        self.text_bias = nn.Linear(d_text, 1)
        self.item_bias = nn.Embedding(len(item_text), 1) if item_bias else None
        if self.item_bias is not None:
            nn.init.zeros_(self.item_bias.weight)
        self.user_tower = mlp([d_text, hidden, dim], dropout)
        self.pool = AttentionPool(d_text, empty="zeros") if pooling == "attention" else None

    def trainable_items(self) -> Tensor | None:
        return getattr(self, "item_known", None)

    def user_side(self, users: Tensor) -> tuple[Tensor, Tensor]:
        if self.pool is None:
            s = self.user_text[users]
        else:
            s = self.pool(self.source_text[self.history[users]], self.history_mask[users])
        u = self.user_tower(s)
        return u, u.new_zeros(u.shape[0])

    def item_side(self, items: Tensor | None) -> tuple[Tensor, Tensor]:
        e = self.item_text if items is None else self.item_text[items]
        bias = self.text_bias(e).squeeze(-1)
        if self.item_bias is not None:
            bias = bias + (self.item_bias.weight.squeeze(-1) if items is None else self.item_bias(items).squeeze(-1))
        return self.adaptor(e), bias

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The target loss, or (a batch tagged ``domain`` 0) the source task's in-batch softmax."""
        if "domain" not in batch or int(batch["domain"]) == 1:
            return super().loss(batch)
        if not hasattr(self, "source_counts"):
            raise ValueError("a source-domain batch needs the source task: build LMBridge with source_text and source_counts")
        users, items = batch["user"], batch["item"]
        count = self.source_counts[users]
        keep = count > 1  # a user with one source item has no rest to predict it from
        if not keep.any():
            return self.item_text.new_zeros(())
        users, items, count = users[keep], items[keep], count[keep].unsqueeze(1)
        rest = (self.user_text[users] * count - self.source_text[items]) / (count - 1)  # leave-one-out mean
        e = self.source_text[items]
        logits = self.user_tower(rest) @ self.adaptor(e).T + self.text_bias(e).squeeze(-1)
        same = items.unsqueeze(0) == items.unsqueeze(1)  # another row's positive that is this row's item
        logits = logits.masked_fill(same & ~torch.eye(len(items), dtype=torch.bool, device=logits.device), float("-inf"))
        return self.source_weight * F.cross_entropy(logits, torch.arange(len(items), device=logits.device))


class PTUPCDRText(TargetScorer):
    """ID + text: PTUPCDR's personal bridge and the LM bridge side by side, trained together.

    The user is ``[p_u^ptupcdr ; p_u^lm]`` and the item ``[q_i ; A(x_i)]``, so the score is the sum
    of both models' scores (one global bias): ids carry what co-watching taught the target MF,
    text carries what the titles and genres say, which matters most for items with little history.
    """

    def __init__(self, ptupcdr: TargetScorer, lm_bridge: LMBridge) -> None:
        if ptupcdr.loss_name != lm_bridge.loss_name:
            raise ValueError(f"both parts must train with one loss, got {ptupcdr.loss_name!r} and {lm_bridge.loss_name!r}")
        super().__init__(ptupcdr.loss_name, global_mean=float(ptupcdr.global_bias.detach()), rating_scale=ptupcdr.rating_scale)
        self.ids, self.text = ptupcdr, lm_bridge

    def trainable_items(self) -> Tensor | None:
        return self.text.trainable_items()

    def user_side(self, users: Tensor) -> tuple[Tensor, Tensor]:
        (u1, b1), (u2, b2) = self.ids.user_side(users), self.text.user_side(users)
        return torch.cat([u1, u2], -1), b1 + b2

    def item_side(self, items: Tensor | None) -> tuple[Tensor, Tensor]:
        (w1, c1), (w2, c2) = self.ids.item_side(items), self.text.item_side(items)
        return torch.cat([w1, w2], -1), c1 + c2
