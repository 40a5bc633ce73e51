"""The cross-domain indexing: one user index for both domains, per-domain item indices, no cold target row in training."""

from __future__ import annotations

import numpy as np
import pytest
from toy_data import two_domains as toy

from cdtl.data import cold_start_split
from cdtl.data.crossdomain import encode_split


@pytest.fixture(scope="module")
def cd():
    return encode_split(cold_start_split(toy(), "src", "tgt", 0.5, seed=0))


def test_one_user_index_for_both_domains(cd):
    for frame in (cd.source_train, cd.target_train, cd.val, cd.test):
        assert (cd.users.decode(frame["u"].to_numpy()) == frame["user"].to_numpy()).all()
    assert cd.n_source_items == cd.n_target_items == 10
    assert (cd.source_items.decode(cd.source_train["i"].to_numpy()) == cd.source_train["item"].to_numpy()).all()


def test_no_target_interaction_of_a_cold_user_is_in_training(cd):
    cold = np.concatenate([cd.val_users, cd.test_users])
    assert not np.isin(cd.target_train["u"], cold).any()
    assert set(cd.test["u"]) == set(cd.test_users) and set(cd.val["u"]) == set(cd.val_users)
    assert cd.summary()["warm_users"] + len(cold) == 80


def test_source_histories_are_the_most_recent_items_oldest_first(cd):
    items, mask = cd.source_histories(2)
    u = int(cd.test_users[0])
    mine = cd.source_train[cd.source_train["u"] == u].sort_values("timestamp")["i"].to_numpy()
    assert items[u][mask[u]].tolist() == mine[-2:].tolist()
    assert cd.has_source().all()


def test_item_rows_follow_the_item_index(cd):
    rows = cd.item_rows("tgt")
    assert (cd.split.data.items["item"].to_numpy()[rows] == cd.target_items.ids).all()
    with pytest.raises(ValueError, match="must be 'src'"):
        cd.item_rows("books")
    with pytest.raises(ValueError, match="'val' or 'test'"):
        cd.held_out("train")
