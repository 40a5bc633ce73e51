"""Sequential protocols: leave-last-out by time, ties, repeats, short users, unknown items, merged and new-domain splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cdtl.data import DataError, RecData
from cdtl.data.sequential import (
    cross_domain_split,
    leave_last_out,
    left_pad,
    new_domain_split,
    order_histories,
    sampled_negatives,
    shuffle_histories,
)


def _data(rows: list[tuple[str, str, int]], n_items: int = 30) -> RecData:
    """Users, items and times; items a* are in domain "a", b* in domain "b"."""
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    inter["domain"] = inter["item"].str[0]
    ids = [f"a{k}" for k in range(n_items)] + [f"b{k}" for k in range(n_items)]
    items = pd.DataFrame({"item": ids, "title": ids, "text": ids, "domain": [i[0] for i in ids]})
    return RecData("toy", inter, items)


def _ids(split, idx) -> list[str]:
    return [split.items[i] for i in idx]


def test_leave_last_out_orders_by_time_not_by_row():
    data = _data([("u", "a3", 30), ("u", "a1", 10), ("u", "a4", 40), ("u", "a2", 20)])
    split = leave_last_out(data, "a", verbose=False)
    assert _ids(split, split.train[0]) == ["a1", "a2"]
    assert _ids(split, [split.val_target[0]]) == ["a3"] and _ids(split, [split.test_target[0]]) == ["a4"]
    assert _ids(split, split.test_history[0]) == ["a1", "a2", "a3"]


def test_short_users_are_excluded_with_a_printed_count(capsys):
    data = _data([("long", f"a{k}", k) for k in range(4)] + [("short", "a1", 0), ("short", "a2", 1)])
    split = leave_last_out(data, "a")
    assert list(split.users) == ["long"] and split.notes["users_excluded_short"] == 1
    assert "1 of 2 users have fewer than 3 interactions" in capsys.readouterr().out


def test_ties_in_time_follow_the_seed_not_the_row_order():
    rows = [("u", f"a{k}", 5) for k in range(8)] + [("u", "a9", 9)]
    orders = {}
    for seed in (0, 1):
        for flip in (False, True):
            table = pd.DataFrame(rows[::-1] if flip else rows, columns=["user", "item", "timestamp"])
            frame, counts = order_histories(table, seed)
            orders[seed, flip] = frame["item"].tolist()
            assert counts["tied_interactions"] == 8 and frame["item"].iloc[-1] == "a9"
    assert orders[0, False] == orders[0, True] and orders[1, False] == orders[1, True]  # row order does not matter
    assert orders[0, False] != orders[1, False]  # the seed does


def test_consecutive_duplicates_are_kept_once_and_counted():
    frame, counts = order_histories(pd.DataFrame(
        [("u", "a1", 1), ("u", "a1", 2), ("u", "a2", 3), ("u", "a1", 4)], columns=["user", "item", "timestamp"]))
    assert frame["item"].tolist() == ["a1", "a2", "a1"] and counts["consecutive_repeats_collapsed"] == 1


def test_unknown_item_in_a_history_is_reported_not_dropped():
    data = _data([("u", "a1", 1), ("u", "a2", 2), ("u", "a99", 3)], n_items=5)
    with pytest.raises(DataError, match="a99"):
        leave_last_out(data, "a", verbose=False)
    split = leave_last_out(_data([("u", "a1", 1), ("u", "a2", 2), ("u", "a3", 3)]), "a", verbose=False)
    with pytest.raises(DataError, match="zz"):
        split.index_of(["a1", "zz"])


def test_empty_target_domain_and_missing_time_are_errors():
    data = _data([("u", "a1", 1), ("u", "a2", 2), ("u", "a3", 3)])
    with pytest.raises(DataError, match="'b' has no interactions"):
        leave_last_out(data, "b", verbose=False)
    with pytest.raises(DataError, match="timestamp"):
        order_histories(data.interactions.drop(columns="timestamp"))


def test_left_pad_truncates_from_the_left():
    matrix, truncated = left_pad([np.array([0, 1, 2, 3, 4]), np.array([7])], max_len=3)
    assert matrix.tolist() == [[3, 4, 5], [0, 0, 8]] and truncated == 1
    with pytest.raises(ValueError, match="max_len"):
        left_pad([np.array([1])], 0)


def test_cross_domain_target_is_the_last_target_item():
    rows = [("u", "b0", 0), ("u", "a1", 1), ("u", "b1", 2), ("u", "a2", 3), ("u", "b2", 4), ("u", "a3", 5),
            ("v", "a1", 0), ("v", "b1", 1)]  # v has one b item: excluded
    split = cross_domain_split(_data(rows), "a", "b", verbose=False)
    assert list(split.users) == ["u"] and split.notes["users_excluded_short"] == 1
    assert _ids(split, [split.test_target[0]]) == ["b2"] and _ids(split, [split.val_target[0]]) == ["b1"]
    assert _ids(split, split.train[0]) == ["b0", "a1"]
    assert _ids(split, split.test_history[0]) == ["b0", "a1", "b1", "a2"]  # the source item between the targets too
    assert set(split.item_domain[split.target_items()]) == {"b"}


def test_new_domain_split_shares_no_user_or_item_and_budgets_are_nested():
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"{d}{rng.integers(30)}", t) for u in range(60) for t, d in enumerate("aaaabbbb")]
    data = _data(rows)
    split = new_domain_split(data, "a", "b", target_share=0.5, seed=3, verbose=False)
    assert split.summary()["shared_users"] == 0 and split.summary()["shared_items"] == 0
    assert 10 < split.target.n_users < 50 and split.pretrain.n_users + split.target.n_users <= 60
    small, big, every = (set(split.budget_users(f)) for f in (0.05, 0.2, 1.0))
    assert len(small) >= 1 and small <= big <= every and len(every) == split.target.n_users
    again = new_domain_split(data, "a", "b", target_share=0.5, seed=3, verbose=False)
    assert list(again.target.users) == list(split.target.users)
    with pytest.raises(ValueError, match="budget"):
        split.budget_users(0.0)


def test_sampled_negatives_avoid_history_and_target_and_follow_the_seed():
    rows = [("u", f"a{k}", k) for k in range(6)] + [("v", f"a{k}", k) for k in range(10, 14)]
    split = leave_last_out(_data(rows, n_items=40), "a", verbose=False)
    neg = sampled_negatives(split, "test", n=20, seed=1)
    assert neg.shape == (2, 20)
    for u in range(2):
        assert len(set(neg[u])) == 20
        assert not set(neg[u]) & (set(split.test_history[u]) | {split.test_target[u]})
    assert (neg == sampled_negatives(split, "test", n=20, seed=1)).all()
    assert not (neg == sampled_negatives(split, "test", n=20, seed=2)).all()
    with pytest.raises(DataError, match="negatives"):
        sampled_negatives(split, "test", n=39)


def test_shuffled_histories_keep_their_items():
    hist = [np.arange(10), np.arange(3)]
    shuffled = shuffle_histories(hist, seed=0)
    assert all(sorted(s) == sorted(h) for s, h in zip(shuffled, hist)) and list(shuffled[0]) != list(hist[0])


def test_movielens_leave_last_out_is_deterministic():
    from cdtl.data import load

    data = load("movielens-100k", "genre")
    one, two = (leave_last_out(data, "comedy", seed=0, verbose=False) for _ in range(2))
    assert (one.test_target == two.test_target).all() and one.n_users > 900
    assert one.notes["tied_interactions"] > 0  # MovieLens logs many ratings in the same second
