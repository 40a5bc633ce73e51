"""PTUPCDR (Zhu et al., WSDM 2022): a meta network reads a user's source history and writes that user's own bridge."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cdtl.models.layers import mlp
from cdtl.models.mf import MF
from cdtl.models.transfer.base import TargetScorer, frozen


class PTUPCDR(TargetScorer):
    """Personalized Transfer of User Preferences: one bridge matrix per user, generated from their source history.

    EMCDR maps every user with the same function. PTUPCDR notices that users differ in what
    carries over (an action fan who loves heist films may like caper comedies), so it makes
    the bridge a function of the user:

    1. characteristic encoder: attention over the user's source items,
       ``a_k = softmax_k(MLP(v_k))`` with ``v_k`` the source MF's item vectors (padding masked),
       and the characteristic ``c_u = sum_k a_k v_k`` (``p`` in the code);
    2. meta network: ``W_u = reshape(MLP(c_u), d x d)``, the user's personal bridge, and a bias
       ``b_u = h^T c_u`` (our addition, so rating scales carry over);
    3. the cold user's target vector is ``p_u = p_u^src W_u`` (p_u^src from the source MF), scored by the
       target MF's items: ``y_ui = g_t + b_u + b_i + p_u^T q_i``.

    Both MFs stay frozen; the attention and the meta network train on the **target-domain
    loss** of warm users (``loss``: ratings for ``"mse"``, BPR pairs for ``"bpr"``), which is
    the task the bridge is for, rather than EMCDR's distance between embeddings (``loss``:
    default the target MF's; ``"softmax"`` ranks the held-out item among all target items).
    ``histories``/``mask`` are (n_users, L) from ``CrossDomainData.source_histories``.
    """

    def __init__(self, source_mf: MF, target_mf: MF, histories: Tensor, mask: Tensor, *, hidden: int = 128,
                 loss: str | None = None, rating_scale: tuple[float, float] | None = None) -> None:
        super().__init__(loss or target_mf.loss_name, global_mean=float(target_mf.global_bias.detach()),
                         rating_scale=rating_scale)
        if histories.shape != mask.shape or histories.shape[0] != source_mf.n_users:
            raise ValueError(f"histories and mask must both be (n_users={source_mf.n_users}, L), got "
                             f"{tuple(histories.shape)} and {tuple(mask.shape)}")
        if source_mf.n_users != target_mf.n_users:
            raise ValueError("source_mf and target_mf must use the same user index (cdtl.data.crossdomain.encode_split)")
        d = source_mf.user_emb.embedding_dim
        if target_mf.item_emb.embedding_dim != d:
            raise ValueError(f"source and target MF must share one dimension, got {d} and {target_mf.item_emb.embedding_dim}")
        self.dim = d
        self.register_buffer("source_users", frozen(source_mf.user_emb.weight))
        self.register_buffer("source_items", frozen(source_mf.item_emb.weight))
        self.register_buffer("item_vectors", frozen(target_mf.item_emb.weight))
        self.register_buffer("item_biases", frozen(target_mf.item_bias.weight.squeeze(-1)))
        self.register_buffer("histories", histories.long().clone())
        self.register_buffer("mask", mask.bool().clone())
        self.attention = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1, bias=False))  # event_K
        self.meta = mlp([d, hidden, d * d])  # the decoder that writes W_u
        self.bias_head = nn.Linear(d, 1)

    def history_attention(self, users: Tensor) -> Tensor:
        """(B, L): each user's attention a_k over their source items, 0 on padding (all 0 without history)."""
        v = self.source_items[self.histories[users]]  # (B, L, d)
        logits = self.attention(v).squeeze(-1).masked_fill(~self.mask[users], float("-inf"))
        return torch.softmax(logits, dim=1).nan_to_num(0.0)  # a user with no history gets p = 0

    def characteristic(self, users: Tensor) -> Tensor:
        """(B, d): the attention-pooled source items of each user (c_u in the class docstring)."""
        v = self.source_items[self.histories[users]]  # (B, L, d)
        return (self.history_attention(users).unsqueeze(-1) * v).sum(1)

    def bridges(self, users: Tensor) -> Tensor:
        """(B, d, d): each user's personal bridge W_u."""
        return self.meta(self.characteristic(users)).view(-1, self.dim, self.dim)

    def user_side(self, users: Tensor) -> tuple[Tensor, Tensor]:
        p = self.characteristic(users)
        bridge = self.meta(p).view(-1, self.dim, self.dim)
        u = torch.bmm(self.source_users[users].unsqueeze(1), bridge).squeeze(1)
        return u, self.bias_head(p).squeeze(-1)

    def item_side(self, items: Tensor | None) -> tuple[Tensor, Tensor]:
        if items is None:
            return self.item_vectors, self.item_biases
        return self.item_vectors[items], self.item_biases[items]
