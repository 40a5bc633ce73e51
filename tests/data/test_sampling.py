"""A user sample keeps whole histories, and a bridge-only sample keeps only users of both domains."""

from __future__ import annotations

import pandas as pd
import pytest
from toy_data import N_USERS, two_domains

from cdtl.data.tables import RecData

toy = two_domains  # the hand-made two-domain set of tests/toy_data.py


def test_sample_users_keeps_whole_histories():
    from cdtl.data.sampling import sample_users

    data = toy()
    small = sample_users(data, 10, seed=3)
    assert small.interactions["user"].nunique() == 10
    for user, part in small.interactions.groupby("user"):
        assert len(part) == (data.interactions["user"] == user).sum()
    assert set(small.items["item"]) == set(small.interactions["item"])
    assert small.notes["sample"]["of_users"] == N_USERS
    with pytest.raises(ValueError, match="n_users"):
        sample_users(data, 0)


def test_bridge_only_sample_keeps_users_of_both_domains():
    from cdtl.data.sampling import sample_users

    data = toy()
    extra = pd.DataFrame({"user": ["solo"], "item": ["src0"], "timestamp": [0], "domain": ["src"]})
    data = RecData("toy", pd.concat([data.interactions, extra], ignore_index=True), data.items)
    small = sample_users(data, 1000, seed=0, bridge_only=True)
    assert "solo" not in set(small.interactions["user"]) and small.interactions["user"].nunique() == N_USERS
