"""CMF: one user factor shared by the source and target domains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdtl.models.batches import rating_batches
from cdtl.models.transfer import CMF
from cdtl.models.transfer.cmf import domain_batches


def test_cmf_shares_user_factors_across_domains():
    model = CMF(4, 3, 5, dim=2, loss="mse", alpha=0.5)
    batch = {"user": torch.tensor([0]), "item": torch.tensor([1]), "rating": torch.tensor([4.0]), "domain": torch.tensor(0)}
    model.loss(batch).backward()
    assert model.user_emb.weight.grad[0].abs().sum() > 0  # a source rating moves the shared user vector
    assert model.items[1].weight.grad is None or model.items[1].weight.grad.abs().sum() == 0
    with pytest.raises(ValueError, match="alpha"):
        CMF(4, 3, 5, alpha=1.0)


def test_domain_batches_tag_every_batch_of_both_makers_with_its_domain():
    source = rating_batches(np.arange(10) % 4, np.arange(10) % 3, np.ones(10), batch_size=4)  # 3 batches
    target = rating_batches(np.arange(6) % 4, np.arange(6) % 5, np.full(6, 2.0), batch_size=4)  # 2 batches
    batches = domain_batches(source, target)
    assert len(batches) == 5
    epoch = list(batches(0, torch.Generator().manual_seed(0)))
    domains = [int(b["domain"]) for b in epoch]
    assert sorted(domains) == [0, 0, 0, 1, 1]
    assert sum(len(b["user"]) for b in epoch if b["domain"] == 0) == 10
    assert all(torch.all(b["rating"] == 2.0) for b in epoch if b["domain"] == 1)  # each batch from its own maker
    orders = {tuple(int(b["domain"]) for b in batches(0, torch.Generator().manual_seed(s))) for s in range(8)}
    assert len(orders) > 1  # the domains are interleaved in a shuffled order


def test_the_source_weight_alpha_scales_each_domains_loss():
    torch.manual_seed(0)
    batch = {"user": torch.tensor([0, 1]), "item": torch.tensor([1, 2]), "rating": torch.tensor([4.0, 2.0])}
    losses = {}
    for alpha in (0.5, 0.8):
        torch.manual_seed(0)
        model = CMF(3, 4, 5, dim=2, loss="mse", alpha=alpha)
        losses[alpha] = [model.loss({**batch, "domain": torch.tensor(d)}).item() for d in (0, 1)]
    assert losses[0.8][0] == pytest.approx(1.6 * losses[0.5][0])  # 2 * alpha
    assert losses[0.8][1] == pytest.approx(0.4 * losses[0.5][1])  # 2 * (1 - alpha)
