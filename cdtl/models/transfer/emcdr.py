"""EMCDR (Man et al., IJCAI 2017): learn each domain's user factors separately, then a map from source to target factors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.models.batches import _Batches
from cdtl.models.layers import mlp
from cdtl.models.mf import MF
from cdtl.models.transfer.base import TargetScorer, frozen

MAPPINGS = ("linear", "mlp")


class EMCDR(TargetScorer):
    """Embedding and Mapping: ``u_target ~ f(u_source)``, with f fitted on the users known in both domains.

    Three steps, the first two being ordinary matrix factorisation:

    1. ``source_mf``: MF on the source domain (every user with source history has a vector);
    2. ``target_mf``: MF on the target domain (only warm users have a trained vector);
    3. a mapping f, linear or a two-layer MLP, fitted on the warm overlapping users so that
       ``f([p_u^src; b_u^src]) ~ [p_u^tgt; b_u^tgt]`` (squared error, the user bias carried as one more coordinate).

    A cold user is then scored by the target model with the mapped vector:
    ``y_ui = g_t + b + b_i + p^T q_i`` where ``[p; b] = f([p_u^src; b_u^src])``. Both MFs stay frozen;
    only f trains (``loss(batch)`` takes ``{"user": warm user indices}``, see ``user_batches``).
    """

    def __init__(self, source_mf: MF, target_mf: MF, *, mapping: str = "linear", hidden: int = 128,
                 rating_scale: tuple[float, float] | None = None) -> None:
        super().__init__(target_mf.loss_name, global_mean=float(target_mf.global_bias.detach()), rating_scale=rating_scale)
        if mapping not in MAPPINGS:
            raise ValueError(f"mapping must be one of {MAPPINGS}, got {mapping!r}")
        if source_mf.n_users != target_mf.n_users:
            raise ValueError(f"source_mf has {source_mf.n_users} users and target_mf {target_mf.n_users}: "
                             "both must use the same user index (cdtl.data.crossdomain.encode_split)")
        self.mapping_name = mapping
        self.register_buffer("source_users", frozen(torch.cat([source_mf.user_emb.weight, source_mf.user_bias.weight], 1)))
        self.register_buffer("target_users", frozen(torch.cat([target_mf.user_emb.weight, target_mf.user_bias.weight], 1)))
        self.register_buffer("item_vectors", frozen(target_mf.item_emb.weight))
        self.register_buffer("item_biases", frozen(target_mf.item_bias.weight.squeeze(-1)))
        d_in, d_out = self.source_users.shape[1], self.target_users.shape[1]
        self.mapping = nn.Linear(d_in, d_out) if mapping == "linear" else mlp([d_in, hidden, d_out])

    def user_side(self, users: Tensor) -> tuple[Tensor, Tensor]:
        mapped = self.mapping(self.source_users[users])
        return mapped[:, :-1], mapped[:, -1]

    def item_side(self, items: Tensor | None) -> tuple[Tensor, Tensor]:
        if items is None:
            return self.item_vectors, self.item_biases
        return self.item_vectors[items], self.item_biases[items]

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Squared distance between the mapped source vectors and the target vectors of warm users."""
        users = batch["user"]
        return F.mse_loss(self.mapping(self.source_users[users]), self.target_users[users])


class UserBatches(_Batches):
    """Shuffled batches of user indices (``{"user": (B,)}``) for training a mapping on warm users."""

    def __init__(self, users: np.ndarray, batch_size: int) -> None:
        if len(users) == 0:
            raise ValueError("users is empty: a mapping needs warm users to learn from")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.users = torch.as_tensor(np.asarray(users), dtype=torch.long)
        self.n, self.batch_size = len(self.users), int(batch_size)

    def __call__(self, epoch: int, generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
        for idx in self._slices(generator):
            yield {"user": self.users[idx]}


def user_batches(users: np.ndarray, batch_size: int = 256) -> UserBatches:
    """Batches for ``EMCDR.loss``: the warm overlapping users, shuffled every epoch."""
    return UserBatches(users, batch_size)
