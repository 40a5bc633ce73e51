"""Matrix factorisation, the single-domain baseline every cross-domain model in the course is measured against."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.models.bpr_sparse import bpr_loss as sparse_bpr_loss

LOSSES = ("mse", "bpr", "softmax", "sampled_softmax")

_BATCH_KEYS = {
    "mse": ("user", "item", "rating"),
    "bpr": ("user", "pos", "neg"),
    "softmax": ("user", "item"),
    "sampled_softmax": ("user", "item", "neg"),
}


class MF(nn.Module):
    """Matrix factorisation with biases, trained with one of ``LOSSES``.

    The score of user u for item i is (in the symbols of the book's notation page)

        y_ui = g + b_u + b_i + p_u^T q_i

    with a global bias g, a user bias b_u, an item bias b_i and ``dim``-dimensional user and
    item embeddings p_u and q_i. One model, four ways to train it (``loss=``):

    - ``"mse"``: explicit ratings, squared error of y_ui against r_ui.
      Batch keys ``user``, ``item``, ``rating``.
    - ``"bpr"``: implicit feedback, a seen item should outscore an unseen one:
      -log sigmoid(y_u,pos - y_u,neg). Batch keys ``user``, ``pos``, ``neg``
      (``neg`` is (B,) or (B, K) for K negatives per positive).
    - ``"softmax"``: implicit feedback, the seen item as a class among all items,
      p(i | u) = exp(y_ui) / sum_j exp(y_uj), cross-entropy with the seen item.
      Batch keys ``user``, ``item``.
    - ``"sampled_softmax"``: the same, with the sum over all items replaced by the positive
      and N negatives shared by the batch, drawn from a distribution q. Each logit becomes
      y_uj - log q(j) (the log-Q correction: without it, items q draws often would be pushed
      down too hard and the sampled loss would not approach the full one as N grows; the
      positive is corrected too), and a negative that is the row's own positive (an
      accidental hit) is masked. Batch keys ``user``, ``item``,
      ``neg`` (N,) and optionally ``log_q`` (n_items,), the sampler's log-probabilities;
      without ``log_q`` the sampler is taken to be uniform, whose correction is a constant
      that cancels.

    The global and user biases are constant along a user's row, so the softmax losses
    cannot learn them (and BPR cannot learn the user bias); they matter for ``"mse"``.

    ``loss(batch)`` is the training contract of ``cdtl.train``; ``score``, ``score_all`` and
    ``predict`` are for inference: they never apply dropout and never track gradients.

    ``reg`` adds reg * mean over the batch of the squared L2 norms of the embeddings and
    biases the batch looks up (an alternative to the optimiser's weight decay, which would
    shrink every row at every step). ``dropout`` is applied to the looked-up embeddings
    while training. ``global_mean`` initialises g (use the training mean rating for
    ``"mse"``). ``rating_scale=(low, high)`` makes ``predict`` clamp into it.

    ``sparse=True`` makes the four tables produce sparse gradients: a step then touches only
    the rows its batch looked up, which is what keeps an epoch over millions of users and
    items linear in the interactions (train with ``optimizer: sparse_adam`` or plain ``sgd``;
    ``cdtl.train`` explains which optimisers accept sparse gradients).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 64,
        *,
        loss: str = "bpr",
        dropout: float = 0.0,
        reg: float = 0.0,
        init_std: float = 0.01,
        global_mean: float = 0.0,
        rating_scale: tuple[float, float] | None = None,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        for name, value in (("n_users", n_users), ("n_items", n_items), ("dim", dim)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if reg < 0 or init_std <= 0:
            raise ValueError(f"reg must be >= 0 and init_std > 0, got reg={reg}, init_std={init_std}")
        if rating_scale is not None and not rating_scale[0] < rating_scale[1]:
            raise ValueError(f"rating_scale must be (low, high) with low < high, got {rating_scale}")
        self.loss_name = loss
        self.reg = float(reg)
        self.rating_scale = rating_scale
        self.user_emb = nn.Embedding(n_users, dim, sparse=sparse)
        self.item_emb = nn.Embedding(n_items, dim, sparse=sparse)
        self.user_bias = nn.Embedding(n_users, 1, sparse=sparse)
        self.item_bias = nn.Embedding(n_items, 1, sparse=sparse)
        self.global_bias = nn.Parameter(torch.tensor(float(global_mean)))
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)

    @property
    def n_users(self) -> int:
        return self.user_emb.num_embeddings

    @property
    def n_items(self) -> int:
        return self.item_emb.num_embeddings

    # ------------------------------------------------------------------ scores

    def _score(self, users: Tensor, items: Tensor, dropout: bool = True) -> Tensor:
        """y for (user, item) pairs; ``users`` and ``items`` broadcast (e.g. (B, 1) with (B, K))."""
        u, w = self.user_emb(users), self.item_emb(items)
        if dropout:
            u, w = self.drop(u), self.drop(w)
        dot = (u * w).sum(-1)
        return dot + self.user_bias(users).squeeze(-1) + self.item_bias(items).squeeze(-1) + self.global_bias

    def _score_shared(self, users: Tensor, items: Tensor | None = None, dropout: bool = True) -> Tensor:
        """(B, M) scores of B users against M items shared by the batch (``None``: all items)."""
        u = self.user_emb(users)
        if items is None:
            w, c = self.item_emb.weight, self.item_bias.weight.squeeze(-1)
        else:
            w, c = self.item_emb(items), self.item_bias(items).squeeze(-1)
        if dropout:
            u, w = self.drop(u), self.drop(w)
        return u @ w.T + c + self.user_bias(users) + self.global_bias

    @torch.no_grad()
    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """y for each (user, item) pair (broadcasting), without dropout or gradients."""
        return self._score(users, items, dropout=False)

    @torch.no_grad()
    def score_all(self, users: Tensor) -> Tensor:
        """(len(users), n_items) scores of every item for each user, for full ranking."""
        return self._score_shared(users, None, dropout=False)

    @torch.no_grad()
    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        """Predicted ratings, clamped into ``rating_scale`` when the model has one."""
        y = self._score(users, items, dropout=False)
        if self.rating_scale is not None:
            y = y.clamp(self.rating_scale[0], self.rating_scale[1])
        return y

    # ------------------------------------------------------------------ losses

    def _penalty(self, users: Tensor, *item_sets: Tensor) -> Tensor:
        """reg * per-example squared norms of the looked-up embeddings and biases, averaged over the batch."""
        if self.reg == 0.0:
            return users.new_zeros((), dtype=self.global_bias.dtype)
        total = (self.user_emb(users) ** 2).sum() + (self.user_bias(users) ** 2).sum()
        for items in item_sets:
            total = total + (self.item_emb(items) ** 2).sum() + (self.item_bias(items) ** 2).sum()
        return self.reg * total / users.shape[0]

    def sampled_softmax_logits(self, users: Tensor, items: Tensor, neg: Tensor, log_q: Tensor | None = None) -> Tensor:
        """(B, 1 + N) corrected logits: column 0 the positive, then the N shared negatives.

        Each logit is y_uj - log q(j); a negative equal to the row's positive is -inf.
        """
        y_pos = self._score(users, items)  # (B,)
        y_neg = self._score_shared(users, neg)  # (B, N)
        if log_q is not None:
            y_pos = y_pos - log_q[items]
            y_neg = y_neg - log_q[neg]
        y_neg = y_neg.masked_fill(neg.unsqueeze(0) == items.unsqueeze(1), float("-inf"))
        return torch.cat([y_pos.unsqueeze(1), y_neg], dim=1)

    def _bpr_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """-log sigmoid(y_pos - y_neg) averaged over the batch and its K negatives, plus the ``reg`` penalty.

        Sparse tables without dropout take ``cdtl.models.bpr_sparse``: the same loss and gradient
        with each distinct row of the batch looked up once and its gradient already summed.
        """
        items = torch.cat([pos.unsqueeze(1), neg.view(len(users), -1)], dim=1)  # (B, 1 + K)
        if self.user_emb.sparse and (self.drop.p == 0.0 or not self.training):
            return sparse_bpr_loss(self, users, items)
        return self._bpr_loss_autograd(users, items)

    def _bpr_loss_autograd(self, users: Tensor, items: Tensor) -> Tensor:
        """BPR through autograd, for (B,) users and (B, 1 + K) items (the positive first).

        One lookup per table, and the penalty reuses the looked-up rows. The global and user
        biases cancel in the difference; they stay in y so that every parameter takes part in
        the step (DDP expects each sparse table to receive a gradient).
        """
        u, w = self.user_emb(users), self.item_emb(items)
        b, c = self.user_bias(users), self.item_bias(items).squeeze(-1)
        y = (self.drop(u).unsqueeze(1) * self.drop(w)).sum(-1) + c + b + self.global_bias
        loss = -F.logsigmoid(y[:, :1] - y[:, 1:]).mean()
        if self.reg == 0.0:
            return loss
        return loss + self.reg * (u.square().sum() + b.square().sum() + w.square().sum() + c.square().sum()) / len(users)

    def _softmax_loss(self, users: Tensor, items: Tensor) -> Tensor:
        """The mean of -log p(item | user) over the batch's rows, each row's item a class among all items.

        The logits are p_u^T q_i + c_i: the global and user biases are the same along a user's
        row and cancel in the softmax, so they are left out (no work, and no gradient that is
        zero up to rounding). Without dropout a user's row is the same wherever the user
        appears in the batch, so it is computed and normalised once per distinct user (the
        same loss and gradient as one row per example, with a fraction of the work on a batch
        that holds each user several times).
        """
        w, c = self.item_emb.weight, self.item_bias.weight.squeeze(-1)
        if self.drop.p == 0.0 or not self.training:
            distinct, inverse = torch.unique(users, return_inverse=True)
            logits = torch.addmm(c, self.user_emb(distinct), w.T)  # (distinct users, n_items)
            return -F.log_softmax(logits, dim=1)[inverse, items].mean()
        return F.cross_entropy(torch.addmm(c, self.drop(self.user_emb(users)), self.drop(w).T), items)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The scalar training loss of one batch (see the module docstring for the keys of each loss)."""
        missing = [k for k in _BATCH_KEYS[self.loss_name] if k not in batch]
        if missing:
            raise KeyError(
                f"loss={self.loss_name!r} needs batch keys {list(_BATCH_KEYS[self.loss_name])}, "
                f"missing {missing}; got {sorted(batch)}"
            )
        users = batch["user"]
        if self.loss_name == "mse":
            y = self._score(users, batch["item"])
            return F.mse_loss(y, batch["rating"].to(y.dtype)) + self._penalty(users, batch["item"])
        if self.loss_name == "bpr":
            return self._bpr_loss(users, batch["pos"], batch["neg"])
        if self.loss_name == "softmax":
            return self._softmax_loss(users, batch["item"]) + self._penalty(users, batch["item"])
        # sampled_softmax
        logits = self.sampled_softmax_logits(users, batch["item"], batch["neg"], batch.get("log_q"))
        target = torch.zeros(len(users), dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, target) + self._penalty(users, batch["item"])
