"""The baseline transfer must beat: target-domain MF, where a user it never saw is placed at the mean warm user."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from cdtl.models.mf import MF
from cdtl.models.transfer.base import TargetScorer, frozen


class MeanUser(TargetScorer):
    """Scores every user as the average of ``warm`` users of a trained target-domain ``MF``.

    A cold user has no row of their own in the target model, so the only honest guess from
    the target domain alone is the average user: ``p = mean(p_v)``, ``b = mean(b_v)`` over
    the users the model was trained on. Under BPR this ranks items roughly by popularity
    (the mean user likes what most users like); under MSE it predicts ``g + mean(b) + b_i + p^T q_i``.
    Nothing is trained here.
    """

    def __init__(self, target_mf: MF, warm: np.ndarray, *, rating_scale: tuple[float, float] | None = None) -> None:
        super().__init__(target_mf.loss_name if target_mf.loss_name in ("mse", "bpr") else "bpr",
                         global_mean=float(target_mf.global_bias.detach()), rating_scale=rating_scale)
        if len(warm) == 0:
            raise ValueError("warm is empty: the mean user needs at least one user the target model was trained on")
        rows = torch.as_tensor(np.asarray(warm), dtype=torch.long)
        self.register_buffer("mean_user", frozen(target_mf.user_emb.weight[rows].mean(0)))
        self.register_buffer("mean_bias", frozen(target_mf.user_bias.weight[rows].mean()))
        self.register_buffer("item_vectors", frozen(target_mf.item_emb.weight))
        self.register_buffer("item_biases", frozen(target_mf.item_bias.weight.squeeze(-1)))

    def user_side(self, users: Tensor) -> tuple[Tensor, Tensor]:
        n = users.shape[0]
        return self.mean_user.expand(n, -1), self.mean_bias.expand(n)

    def item_side(self, items: Tensor | None) -> tuple[Tensor, Tensor]:
        if items is None:
            return self.item_vectors, self.item_biases
        return self.item_vectors[items], self.item_biases[items]
