"""Smaller versions of a dataset for quick runs: a seeded sample of users, with every interaction of theirs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cdtl.data.tables import RecData


def sample_users(data: RecData, n_users: int, *, seed: int = 0, bridge_only: bool = False) -> RecData:
    """``data`` restricted to ``n_users`` users drawn without replacement (seeded), and to the items they touched.

    With ``bridge_only`` the users are drawn among those active in more than one domain (the
    only users a cross-domain protocol can make cold), and no other user is kept.

    Every interaction of a kept user is kept (so each user's history is whole); items no kept
    user interacted with are dropped from the catalogue. The sizes are recorded in ``notes["sample"]``.
    """
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        raise ValueError(f"n_users must be a positive integer, got {n_users!r}")
    inter = data.interactions
    if bridge_only:
        if "domain" not in inter.columns:
            raise ValueError(f"{data.name} has no domain column: bridge_only needs two-domain data")
        per_user = inter.groupby("user")["domain"].nunique()
        users = np.sort(per_user.index[per_user > 1].to_numpy())
    else:
        users = np.sort(inter["user"].unique())
    if n_users >= len(users) and not bridge_only:
        return data
    kept = np.random.default_rng(seed).choice(users, min(int(n_users), len(users)), replace=False)
    inter = data.interactions[data.interactions["user"].isin(kept)].reset_index(drop=True)
    items = data.items[data.items["item"].isin(inter["item"])].reset_index(drop=True)
    user_table = None if data.users is None else data.users[data.users["user"].isin(kept)].reset_index(drop=True)
    notes = {**data.notes, "sample": {"users": int(n_users), "of_users": int(len(users)), "seed": int(seed),
                                       "items": int(len(items)), "of_items": int(len(data.items))}}
    return replace(data, interactions=inter, items=items, users=user_table, notes=notes)


__all__ = ["sample_users"]
