"""A small hand-made two-domain set where transfer must help: each user's taste is the same in both domains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from cdtl.data.tables import RecData

N_USERS, PER_GROUP = 80, 5  # two taste groups; each domain has PER_GROUP items per group


def two_domains(ratings: bool = False, seed: int = 0, per_group: int = PER_GROUP) -> RecData:
    """Users of group g consume 4 of the ``per_group`` items of group g in both domains (rated 5); with
    ``ratings``, also 2 items of the other group, rated 1. Item texts name the group, in words both domains share."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        group = u % 2
        for domain in ("src", "tgt"):
            liked = rng.choice(per_group, 4, replace=False) + group * per_group
            for t, j in enumerate(liked):
                rows.append((f"u{u:02d}", f"{domain}{j}", 5.0, t, domain))
            if ratings:
                for t, j in enumerate(rng.choice(per_group, 2, replace=False) + (1 - group) * per_group):
                    rows.append((f"u{u:02d}", f"{domain}{j}", 1.0, 10 + t, domain))
    inter = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp", "domain"])
    items = pd.DataFrame([(f"{d}{j}", f"{'loud' if j < per_group else 'quiet'} {d} {j}", d)
                          for d in ("src", "tgt") for j in range(2 * per_group)], columns=["item", "text", "domain"])
    items["title"] = items["text"]
    if not ratings:
        inter = inter.drop(columns="rating")
    return RecData("toy", inter, items, rating_scale=(1.0, 5.0) if ratings else None)


def text_vectors(data: RecData) -> torch.Tensor:
    """Stand-in language-model vectors: the group word decides the direction, plus a little noise."""
    g = torch.Generator().manual_seed(0)
    loud = torch.tensor(["loud" in t for t in data.items["text"]], dtype=torch.float32)
    base = torch.stack([loud, 1 - loud] + [torch.zeros(len(loud))] * 6, 1)
    return base + 0.05 * torch.randn(base.shape, generator=g)
