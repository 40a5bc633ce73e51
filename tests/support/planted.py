"""Two planted taste groups of users and items, for the tests of MF and its batch makers."""

from __future__ import annotations

import numpy as np

N_USERS, N_ITEMS = 40, 24
NEVER_SEEN = 23  # no user interacts with this item


def _planted() -> dict[str, np.ndarray]:
    """Two taste groups: even users like items 0-10, odd users items 11-21; item 22 is shared, 23 never seen.

    Each user has interacted with 7 random items of their own group (rating 5) and 3 of the
    other group (rating 1); ``held`` is one of their own group's items they have not seen.
    """
    rng = np.random.default_rng(0)
    users, items, ratings, held = [], [], [], []
    for u in range(N_USERS):
        own = np.arange(0, 11) if u % 2 == 0 else np.arange(11, 22)
        other = np.arange(11, 22) if u % 2 == 0 else np.arange(0, 11)
        liked = rng.choice(own, size=8, replace=False)
        disliked = rng.choice(other, size=3, replace=False)
        users += [u] * 10
        items += list(liked[:7]) + list(disliked)
        ratings += [5.0] * 7 + [1.0] * 3
        held.append(liked[7])
    return {
        "users": np.array(users), "items": np.array(items), "ratings": np.array(ratings, dtype=np.float32),
        "held": np.array(held),
    }
