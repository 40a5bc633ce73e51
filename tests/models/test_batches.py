"""Batch makers for the id models: every pair once, seeded shuffles, negatives that avoid positives, users kept together."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from planted import _planted

from cdtl.data.ids import interaction_matrix
from cdtl.models import bpr_batches, rating_batches, softmax_batches


def test_group_by_user_keeps_each_users_rows_together():
    from cdtl.models.batches import group_by_user, rating_batches

    users = np.repeat(np.arange(6), 4)
    batches = group_by_user(rating_batches(users, np.arange(24) % 5, np.ones(24, dtype=np.float32), batch_size=8))
    seen = [b["user"].tolist() for b in batches(0, torch.Generator().manual_seed(0))]
    flat = [u for b in seen for u in b]
    assert sorted(flat) == sorted(users.tolist())
    changes = sum(1 for a, b in zip(flat, flat[1:]) if a != b)
    assert changes == 5  # six users, each in one run of rows


def test_batch_makers_cover_every_pair_once_and_are_seeded():
    data = _planted()
    batches = rating_batches(data["users"], data["items"], data["ratings"], batch_size=64)
    assert len(batches) == math.ceil(len(data["users"]) / 64)
    epoch = list(batches(0, torch.Generator().manual_seed(3)))
    seen = sorted(zip(torch.cat([b["user"] for b in epoch]).tolist(), torch.cat([b["item"] for b in epoch]).tolist()))
    assert seen == sorted(zip(data["users"].tolist(), data["items"].tolist()))
    again = list(batches(0, torch.Generator().manual_seed(3)))
    assert all(torch.equal(x["user"], y["user"]) for x, y in zip(epoch, again))
    other = list(batches(0, torch.Generator().manual_seed(4)))
    assert not torch.equal(epoch[0]["user"], other[0]["user"])
    assert epoch[0]["rating"].dtype == torch.float32 and epoch[0]["user"].dtype == torch.int64


def test_bpr_negatives_never_hit_a_training_positive():
    rng = np.random.default_rng(0)
    n_users, n_items = 50, 30
    dense = rng.random((n_users, n_items)) < 0.8  # dense on purpose: most uniform draws are hits
    dense[:, 0] = False  # every user has at least one negative
    users, items = np.nonzero(dense)
    csr = interaction_matrix(users, items, n_users, n_items)
    batches = bpr_batches(users, items, n_items, 100, csr)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(3):
        for batch in batches(epoch, gen):
            assert not dense[batch["user"].numpy(), batch["neg"].numpy()].any()
            assert dense[batch["user"].numpy(), batch["pos"].numpy()].all()
    several = bpr_batches(users, items, n_items, 100, csr, n_negatives=4)
    batch = next(several(0, gen))
    assert batch["neg"].shape == (100, 4)
    assert not dense[batch["user"].numpy()[:, None], batch["neg"].numpy()].any()
    full = interaction_matrix(np.zeros(3, dtype=np.int64), np.arange(3), 1, 3)
    with pytest.raises(ValueError, match="every item"):
        bpr_batches(np.zeros(3, dtype=np.int64), np.arange(3), 3, 2, full)
    with pytest.raises(ValueError, match="n_items"):
        bpr_batches(users, items, n_items + 1, 100, csr)


def test_softmax_batches_sample_shared_negatives_from_the_sampler():
    users = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    items = np.array([0, 1, 1, 1, 1, 2, 2, 2])  # item 3 and 4 never occur
    full = softmax_batches(users, items, 5, batch_size=3)
    assert len(full) == 3 and set(next(full(0, torch.Generator().manual_seed(0)))) == {"user", "item"}
    pop = softmax_batches(users, items, 5, batch_size=8, n_negatives=2000, sampler="popularity")
    batch = next(pop(0, torch.Generator().manual_seed(0)))
    assert batch["neg"].shape == (2000,)
    counts = torch.bincount(batch["neg"], minlength=5).numpy() / 2000
    np.testing.assert_allclose(counts, [1 / 8, 4 / 8, 3 / 8, 0, 0], atol=0.04)
    torch.testing.assert_close(batch["log_q"].exp(), torch.tensor([1 / 8, 4 / 8, 3 / 8, 0, 0]))
    uni = softmax_batches(users, items, 5, batch_size=8, n_negatives=4)
    torch.testing.assert_close(next(uni(0, torch.Generator()))["log_q"], torch.full((5,), -math.log(5)))
    with pytest.raises(ValueError, match="sampler"):
        softmax_batches(users, items, 5, 8, n_negatives=4, sampler="zipf")
    with pytest.raises(ValueError, match=r"items must lie in \[0, 2\)"):
        softmax_batches(users, items, 2, 8)
