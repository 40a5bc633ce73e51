"""A (user, item) pair appears once: repeats are refused or resolved by policy, and no test pair reaches training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cdtl.data import DataError, RecData, cold_start_split, load_movielens, load_tables, split_by_genre
from cdtl.data.protocols import per_user_split, random_split


def _repeats() -> tuple[pd.DataFrame, pd.DataFrame]:
    """u1 rated m1 twice (3 then 5) and b1 twice at the same time (2 then 4)."""
    inter = pd.DataFrame({
        "user": ["u1", "u1", "u2", "u1", "u2", "u3", "u1", "u3"],
        "item": ["m1", "b1", "m2", "m1", "b1", "b2", "b1", "m1"],
        "domain": ["movies", "books", "movies", "movies", "books", "books", "books", "movies"],
        "rating": [3, 2, 4, 5, 1, 5, 4, 2],
        "timestamp": [10, 20, 30, 40, 50, 60, 20, 70],
    })
    items = pd.DataFrame({"item": ["m1", "m2", "b1", "b2"], "domain": ["movies", "movies", "books", "books"],
                          "title": ["Alien", "Heat", "Dune", "Emma"]})
    return inter, items


def test_repeated_pairs_are_refused_with_the_count_and_examples():
    inter, items = _repeats()
    with pytest.raises(DataError) as err:
        load_tables(inter, items, rating_scale=(1, 5))
    message = str(err.value)
    assert "2 (user, item) pair(s) appear more than once" in message and "(4 rows)" in message
    assert "user 'u1' item 'm1' at rows [0, 3]" in message and "duplicates='latest'" in message


def test_latest_keeps_each_pairs_latest_row_and_says_how_many_it_dropped():
    inter, items = _repeats()
    data = load_tables(inter, items, rating_scale=(1, 5), duplicates="latest")
    kept = data.interactions.set_index(["user", "item"])
    assert kept.index.is_unique and len(kept) == 6
    assert kept.loc[("u1", "m1"), "rating"] == 5  # timestamp 40 beats 10
    assert kept.loc[("u1", "b1"), "rating"] == 4  # same timestamp: the later row in the table
    assert data.notes["duplicates_dropped"] == 2
    assert data.interactions["timestamp"].tolist() == [30, 40, 50, 60, 20, 70]  # the table's order is kept


def test_latest_without_timestamps_keeps_the_later_row():
    inter, items = _repeats()
    data = load_tables(inter.drop(columns="timestamp"), items, rating_scale=(1, 5), duplicates="latest")
    assert data.interactions.set_index(["user", "item"]).loc[("u1", "m1"), "rating"] == 5


def test_unknown_policy_names_the_valid_ones():
    inter, items = _repeats()
    with pytest.raises(ValueError, match=r"duplicates must be one of \('refuse', 'latest'\)"):
        load_tables(inter, items, rating_scale=(1, 5), duplicates="mean")


def test_every_protocol_refuses_a_table_with_repeated_pairs():
    inter, items = _repeats()
    with pytest.raises(DataError, match="per_user_split: interactions: 2 .user, item. pair"):
        per_user_split(inter)
    with pytest.raises(DataError, match="random_split: interactions: 2 .user, item. pair"):
        random_split(inter)
    by_hand = RecData("by-hand", inter, items.assign(text=items["title"]), rating_scale=(1, 5))
    with pytest.raises(DataError, match="by-hand: interactions: 2 .user, item. pair"):
        cold_start_split(by_hand, "movies", "books", 0.5)


def _pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["user"], frame["item"]))


@pytest.fixture(scope="module")
def ml100k() -> RecData:
    return split_by_genre(load_movielens("movielens-100k"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_held_out_pair_is_in_training_under_any_protocol(ml100k, seed):
    inter = ml100k.interactions
    splits = {
        "per_user": per_user_split(inter, seed=seed),
        "random": random_split(inter, test=0.1, val=0.1, seed=seed),
    }
    cold = cold_start_split(ml100k, "action", "comedy", 0.2, seed=seed)
    splits["cold_start"] = (cold.train, cold.val, cold.test)
    for name, (train, val, test) in splits.items():
        seen = _pairs(train)
        assert len(test) and not seen & _pairs(test), name
        assert not seen & _pairs(val), name
        assert len(train) + len(val) + len(test) == len(inter if name != "cold_start" else cold.data.interactions)


def test_resolved_repeats_never_straddle_train_and_test():
    rng = np.random.default_rng(0)
    n = 4000
    inter = pd.DataFrame({"user": rng.integers(0, 60, n).astype(str), "item": rng.integers(0, 40, n).astype(str),
                          "rating": rng.integers(1, 6, n), "timestamp": rng.integers(0, 10**6, n)})
    inter["domain"] = np.where(inter["item"].astype(int) < 20, "a", "b")
    items = pd.DataFrame({"item": [str(i) for i in range(40)], "domain": ["a"] * 20 + ["b"] * 20})
    assert inter.duplicated(["user", "item"]).sum() > 1000  # many repeats to resolve
    data = load_tables(inter, items, rating_scale=(1, 5), duplicates="latest")
    for seed in range(3):
        for train, val, test in (per_user_split(data.interactions, seed=seed),
                                 random_split(data.interactions, val=0.1, seed=seed)):
            assert not _pairs(train) & (_pairs(test) | _pairs(val))
        cold = cold_start_split(data, "a", "b", 0.5, seed=seed)
        assert not _pairs(cold.train) & (_pairs(cold.test) | _pairs(cold.val))
