"""What every cross-domain model shares: a cold user's target-domain scores come from a user vector built on the source side."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TRANSFER_LOSSES = ("mse", "bpr", "softmax")


class TargetScorer(nn.Module):
    """Target-domain scores ``y_ui = g + b_u + b_i + p_u^T q_i`` for models that build ``(p_u, b_u)`` their own way.

    A subclass defines ``user_side(users) -> (vectors (B, d), biases (B,))`` - how a user is
    represented in the target domain - and ``item_side(items) -> (vectors (..., d), biases (...))``
    for any shape of item indices (``None``: every target item). This class turns them into

    - ``score_all(users)``: (B, n_target_items) scores, for full ranking;
    - ``predict(users, items)``: ratings, clamped into ``rating_scale`` when given;
    - ``loss(batch)``: the target-domain training loss, ``"mse"`` on (user, item, rating) batches,
      ``"bpr"`` on (user, pos, neg) batches, or ``"softmax"`` on (user, item) batches: the
      held-out item as one class among all target items (``cdtl.models.batches``), or among
      ``trainable_items()`` when a model holds some items out of training (new items).

    ``global_bias`` g is a buffer (set it to the training mean rating for ``"mse"``).
    """

    def __init__(self, loss: str = "bpr", *, global_mean: float = 0.0,
                 rating_scale: tuple[float, float] | None = None) -> None:
        super().__init__()
        if loss not in TRANSFER_LOSSES:
            raise ValueError(f"loss must be one of {TRANSFER_LOSSES}, got {loss!r}")
        self.loss_name = loss
        self.rating_scale = rating_scale
        self.register_buffer("global_bias", torch.tensor(float(global_mean)))

    def user_side(self, users: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def item_side(self, items: Tensor | None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def trainable_items(self) -> Tensor | None:
        """(n_target_items,) bool: the items the softmax loss ranks among (None: every item)."""
        return None

    def _pairs(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores of user b with items[b] ((B,) or (B, K) items); each distinct user and item is represented once."""
        distinct, inverse = torch.unique(users, return_inverse=True)
        u, b = self.user_side(distinct)
        u, b = u[inverse], b[inverse]
        distinct_items, where = torch.unique(items, return_inverse=True)  # a batch names popular items many times
        w, c = self.item_side(distinct_items)
        w, c = w[where], c[where]
        if items.dim() == 1:
            return (u * w).sum(-1) + b + c + self.global_bias
        return (u.unsqueeze(1) * w).sum(-1) + b.unsqueeze(1) + c + self.global_bias

    @torch.no_grad()
    def score_all(self, users: Tensor) -> Tensor:
        """(len(users), n_target_items) scores, without dropout or gradients."""
        was_training = self.training
        self.eval()
        users = users.to(self.global_bias.device)
        u, b = self.user_side(users)
        w, c = self.item_side(None)
        self.train(was_training)
        return u @ w.T + c + b.unsqueeze(1) + self.global_bias

    @torch.no_grad()
    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        """Predicted ratings of (user, item) pairs, clamped into ``rating_scale`` when the model has one."""
        was_training = self.training
        self.eval()
        device = self.global_bias.device
        y = self._pairs(users.to(device), items.to(device))
        self.train(was_training)
        return y.clamp(*self.rating_scale) if self.rating_scale is not None else y

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Target-domain loss of one batch: squared error on ratings, BPR on (pos, neg) pairs, or the full softmax."""
        if self.loss_name == "mse":
            y = self._pairs(batch["user"], batch["item"])
            return F.mse_loss(y, batch["rating"].to(y.dtype))
        if self.loss_name == "softmax":  # the user's bias is the same for every item: it cancels
            distinct, inverse = torch.unique(batch["user"], return_inverse=True)
            u, _ = self.user_side(distinct)
            w, c = self.item_side(None)
            logits = u @ w.T + c
            known = self.trainable_items()
            if known is not None:  # items held out of training (new items) are not even negatives
                logits = logits.masked_fill(~known, float("-inf"))
            # normalised once per distinct user, not once per row: a batch of whole users holds each one many times
            return -F.log_softmax(logits, dim=1)[inverse, batch["item"]].mean()
        neg = batch["neg"] if batch["neg"].dim() == 2 else batch["neg"].unsqueeze(1)
        y = self._pairs(batch["user"], torch.cat([batch["pos"].unsqueeze(1), neg], dim=1))
        return -F.logsigmoid(y[:, :1] - y[:, 1:]).mean()


def frozen(tensor: Tensor) -> Tensor:
    """A detached float32 copy, to register as a buffer: pretrained parts a bridge reads but never trains."""
    return tensor.detach().float().clone().cpu()
