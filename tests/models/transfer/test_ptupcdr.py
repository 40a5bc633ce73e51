"""PTUPCDR: a per-user bridge generated from the source history, finite for users with none."""

from __future__ import annotations

import pytest
import torch

from cdtl.models.mf import MF
from cdtl.models.transfer import PTUPCDR


def test_ptupcdr_user_without_history_gets_a_finite_vector():
    src, tgt = MF(3, 4, 3, loss="bpr"), MF(3, 5, 3, loss="bpr")
    hist = torch.tensor([[1, 2], [0, 0], [3, 0]])
    mask = torch.tensor([[True, True], [False, False], [True, False]])
    u, b = PTUPCDR(src, tgt, hist, mask).user_side(torch.arange(3))
    assert torch.isfinite(u).all() and torch.isfinite(b).all()


def test_each_user_gets_a_bridge_from_their_own_history_and_only_the_bridge_trains():
    torch.manual_seed(0)
    src, tgt = MF(4, 6, 3, loss="bpr"), MF(4, 5, 3, loss="bpr")
    hist = torch.tensor([[1, 2], [1, 2], [4, 5], [2, 1]])
    mask = torch.ones(4, 2, dtype=torch.bool)
    model = PTUPCDR(src, tgt, hist, mask, hidden=8, loss="softmax")
    bridges = model.bridges(torch.arange(4))
    assert torch.allclose(bridges[0], bridges[1]) and torch.allclose(bridges[0], bridges[3])  # same items, any order
    assert not torch.allclose(bridges[0], bridges[2])
    attention = model.history_attention(torch.arange(4))
    torch.testing.assert_close(attention.sum(1), torch.ones(4))
    model.loss({"user": torch.tensor([0, 2]), "item": torch.tensor([1, 3])}).backward()
    assert all(p.grad is not None for p in model.meta.parameters())
    assert src.user_emb.weight.grad is None and tgt.item_emb.weight.grad is None  # the MFs stay frozen
    with pytest.raises(ValueError, match="share one dimension"):
        PTUPCDR(src, MF(4, 5, 2), hist, mask)
    with pytest.raises(ValueError, match=r"histories and mask must both be \(n_users=4, L\)"):
        PTUPCDR(src, tgt, hist[:3], mask[:3])
