"""Collective matrix factorisation (Singh & Gordon, KDD 2008): one user vector, factorising both domains at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.models.transfer.base import TargetScorer

SOURCE, TARGET = 0, 1


class CMF(TargetScorer):
    """Both domains' interactions factorised with **shared user factors**.

    ``y_ui = g_d + b_u + b_i + p_u^T q_i`` where d is the item's domain: each domain has its
    own item vectors, item biases and global bias, but a user has one vector ``p_u`` (and
    one bias) for both. A cold user's vector is learned from their source interactions
    alone, and because the target items were learned against the same user space (by the
    warm users), it ranks target items directly: the transfer is in the sharing, with no
    mapping at all.

    ``loss(batch)`` reads ``batch["domain"]`` (0 source, 1 target) and weighs the source
    loss by ``alpha`` and the target loss by ``1 - alpha`` (times 2, so ``alpha=0.5`` is the
    plain sum); ``domain_batches`` interleaves batches of both domains. ``reg`` adds, as in
    ``MF``, reg times the batch mean of the squared norms of the vectors and biases it looks up.
    """

    def __init__(self, n_users: int, n_source_items: int, n_target_items: int, dim: int = 64, *,
                 loss: str = "bpr", alpha: float = 0.5, reg: float = 0.0, init_std: float = 0.01, source_mean: float = 0.0,
                 target_mean: float = 0.0, rating_scale: tuple[float, float] | None = None) -> None:
        super().__init__(loss, global_mean=target_mean, rating_scale=rating_scale)
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha}")
        if reg < 0:
            raise ValueError(f"reg must be >= 0, got {reg}")
        self.alpha, self.reg = float(alpha), float(reg)
        self.user_emb = nn.Embedding(n_users, dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.items = nn.ModuleList([nn.Embedding(n_source_items, dim), nn.Embedding(n_target_items, dim)])
        self.item_bias = nn.ModuleList([nn.Embedding(n_source_items, 1), nn.Embedding(n_target_items, 1)])
        self.register_buffer("domain_means", torch.tensor([float(source_mean), float(target_mean)]))
        for table in (self.user_emb, *self.items):
            nn.init.normal_(table.weight, std=init_std)
        for table in (self.user_bias, *self.item_bias):
            nn.init.zeros_(table.weight)

    def user_side(self, users: Tensor) -> tuple[Tensor, Tensor]:
        return self.user_emb(users), self.user_bias(users).squeeze(-1)

    def item_side(self, items: Tensor | None, domain: int = TARGET) -> tuple[Tensor, Tensor]:
        table, bias = self.items[domain], self.item_bias[domain]
        if items is None:
            return table.weight, bias.weight.squeeze(-1)
        return table(items), bias(items).squeeze(-1)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The weighted loss of one single-domain batch (``batch["domain"]``: 0 source, 1 target)."""
        domain = int(batch["domain"])
        u, b = self.user_side(batch["user"])
        g = self.domain_means[domain]
        weight = 2 * (self.alpha if domain == SOURCE else 1 - self.alpha)
        if self.loss_name == "mse":
            w, c = self.item_side(batch["item"], domain)
            y = (u * w).sum(-1) + b + c + g
            loss = F.mse_loss(y, batch["rating"].to(y.dtype))
        else:
            neg = batch["neg"] if batch["neg"].dim() == 2 else batch["neg"].unsqueeze(1)
            w, c = self.item_side(torch.cat([batch["pos"].unsqueeze(1), neg], 1), domain)
            y = (u.unsqueeze(1) * w).sum(-1) + c
            loss = -F.logsigmoid(y[:, :1] - y[:, 1:]).mean()
        if self.reg:
            n = u.shape[0]
            loss = loss + self.reg * ((u ** 2).sum() + (b ** 2).sum() + (w ** 2).sum() + (c ** 2).sum()) / n
        return weight * loss


class DomainBatches:
    """Every batch of a source and a target batch maker in one shuffled epoch, each tagged with its domain."""

    def __init__(self, source: Callable, target: Callable) -> None:
        self.makers = (source, target)

    def __len__(self) -> int:
        return sum(len(m) for m in self.makers)

    def __call__(self, epoch: int, generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
        streams = [iter(m(epoch, generator)) for m in self.makers]
        order = torch.cat([torch.full((len(m),), d) for d, m in enumerate(self.makers)])
        for domain in order[torch.randperm(len(order), generator=generator)].tolist():
            batch = next(streams[domain], None)
            if batch is not None:
                yield {**batch, "domain": torch.tensor(domain)}


def domain_batches(source: Callable, target: Callable) -> DomainBatches:
    """Interleave ``source`` and ``target`` batch makers (``cdtl.models.batches``) for ``CMF``."""
    return DomainBatches(source, target)
