"""Stand-in data for the new-item models: two taste groups of items, text that tells them apart, two new items."""

from __future__ import annotations

import numpy as np
import torch

N_USERS, N_ITEMS = 60, 12  # items 0-5 are "loud", 6-11 "quiet"; items 5 and 11 are new (no training interaction)
NEW = [5, 11]


def group_text(n_items: int = N_ITEMS, noise: float = 0.05, dim: int = 8) -> torch.Tensor:
    """Stand-in text vectors: the first half of the items points one way, the second half the other."""
    g = torch.Generator().manual_seed(0)
    loud = (torch.arange(n_items) < n_items // 2).float()
    base = torch.stack([loud, 1 - loud] + [torch.zeros(n_items)] * (dim - 2), 1)
    return base + noise * torch.randn(base.shape, generator=g)


def training_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Even users consume 3 of the old loud items, odd users 3 of the old quiet ones; users 50-59 have none (cold)."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(50):
        pool = [0, 1, 2, 3, 4] if u % 2 == 0 else [6, 7, 8, 9, 10]
        for j in rng.choice(pool, 3, replace=False):
            users.append(u)
            items.append(int(j))
    return np.array(users), np.array(items)
