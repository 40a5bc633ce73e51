"""Batch makers for the id models: shapes, checks and the order they hand rows out in."""

from __future__ import annotations

import numpy as np
import torch


def test_group_by_user_keeps_each_users_rows_together():
    from cdtl.models.batches import group_by_user, rating_batches

    users = np.repeat(np.arange(6), 4)
    batches = group_by_user(rating_batches(users, np.arange(24) % 5, np.ones(24, dtype=np.float32), batch_size=8))
    seen = [b["user"].tolist() for b in batches(0, torch.Generator().manual_seed(0))]
    flat = [u for b in seen for u in b]
    assert sorted(flat) == sorted(users.tolist())
    changes = sum(1 for a, b in zip(flat, flat[1:]) if a != b)
    assert changes == 5  # six users, each in one run of rows
