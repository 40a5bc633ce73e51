"""CMF: one user factor shared by the source and target domains."""

from __future__ import annotations

import pytest
import torch

from cdtl.models.transfer import CMF


def test_cmf_shares_user_factors_across_domains():
    model = CMF(4, 3, 5, dim=2, loss="mse", alpha=0.5)
    batch = {"user": torch.tensor([0]), "item": torch.tensor([1]), "rating": torch.tensor([4.0]), "domain": torch.tensor(0)}
    model.loss(batch).backward()
    assert model.user_emb.weight.grad[0].abs().sum() > 0  # a source rating moves the shared user vector
    assert model.items[1].weight.grad is None or model.items[1].weight.grad.abs().sum() == 0
    with pytest.raises(ValueError, match="alpha"):
        CMF(4, 3, 5, alpha=1.0)
