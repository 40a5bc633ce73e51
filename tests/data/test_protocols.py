"""Splits: exact partitions, per-user fractions, determinism and bad-input errors."""

from __future__ import annotations

import pandas as pd
import pytest

from cdtl.data import RecData, load_movielens
from cdtl.data.protocols import per_user_split, random_split


@pytest.fixture(scope="module")
def ml100k() -> RecData:
    return load_movielens("movielens-100k")


def _table(counts: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Users with the given numbers of interactions, distinct items, shuffled rows."""
    rows = [(u, f"i{j}", float(1 + j % 5), j) for u, n in counts.items() for j in range(n)]
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _keys(df: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(zip(df["user"], df["item"]))


# --------------------------------------------------------------------------- per_user_split


def test_per_user_split_partitions_and_honours_fractions_per_user():
    counts = {"a": 1, "b": 2, "c": 3, "d": 10, "e": 20, "f": 25, "g": 7}
    df = _table(counts)
    train, val, test = per_user_split(df, (0.8, 0.1, 0.1), seed=3)
    assert len(train) + len(val) + len(test) == len(df)
    assert _keys(pd.concat([train, val, test])) == _keys(df)
    assert not set(_keys(train)) & set(_keys(test)) and not set(_keys(val)) & set(_keys(test))
    assert list(train.columns) == list(df.columns) and train["rating"].dtype == df["rating"].dtype
    sizes = {name: part.groupby("user").size() for name, part in (("train", train), ("val", val), ("test", test))}
    expected = {  # (train, val, test): round half up, at least one held out, < 3 keeps all
        "a": (1, 0, 0), "b": (2, 0, 0), "c": (1, 1, 1), "d": (8, 1, 1), "e": (16, 2, 2), "f": (19, 3, 3), "g": (5, 1, 1),
    }
    for user, want in expected.items():
        got = tuple(int(sizes[name].get(user, 0)) for name in ("train", "val", "test"))
        assert got == want, user


def test_per_user_split_is_deterministic_per_seed_and_shuffles():
    df = _table({f"u{n}": 30 for n in range(20)})
    a = per_user_split(df, seed=0)
    b = per_user_split(df, seed=0)
    c = per_user_split(df, seed=1)
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    assert _keys(a[2]) != _keys(c[2])
    # the held-out items are not simply the first or last rows of each user
    held = set(_keys(a[2]))
    firsts = {(u, it) for u, it in zip(df["user"], df["item"]) if it in ("i0", "i1", "i2")}
    assert held != firsts


def test_per_user_split_without_validation_and_bad_fractions():
    df = _table({"a": 10, "b": 4})
    train, val, test = per_user_split(df, (0.9, 0.0, 0.1))
    assert len(val) == 0 and list(val.columns) == list(df.columns)
    assert test.groupby("user").size().to_dict() == {"a": 1, "b": 1}
    for bad in [(0.8, 0.1), (0.5, 0.1, 0.1), (0.9, 0.2, -0.1), (1.0, 0.0, 0.0)]:
        with pytest.raises(ValueError, match="fractions"):
            per_user_split(df, bad)
    with pytest.raises(ValueError, match="no training interaction"):
        per_user_split(_table({"a": 4}), (0.2, 0.4, 0.4))


def test_per_user_split_on_movielens_keeps_every_user_in_training(ml100k):
    train, val, test = per_user_split(ml100k.interactions, seed=0)
    assert len(train) + len(val) + len(test) == 100_000
    assert set(train["user"]) == set(ml100k.interactions["user"])
    assert 0.09 < len(test) / 100_000 < 0.11 and 0.09 < len(val) / 100_000 < 0.11


# --------------------------------------------------------------------------- random_split


def test_random_split_partitions_exact_sizes_and_is_seeded():
    df = _table({f"u{n}": 13 for n in range(10)})  # 130 rows
    train, val, test = random_split(df, test=0.1, val=0.2, seed=5)
    assert (len(train), len(val), len(test)) == (91, 26, 13)
    assert _keys(pd.concat([train, val, test])) == _keys(df)
    again = random_split(df, test=0.1, val=0.2, seed=5)
    pd.testing.assert_frame_equal(test, again[2])
    assert _keys(test) != _keys(random_split(df, test=0.1, val=0.2, seed=6)[2])
    _, val0, _ = random_split(df, test=0.1)
    assert len(val0) == 0
    for kwargs in ({"test": 0.0}, {"test": 1.0}, {"test": 0.6, "val": 0.5}, {"test": 0.1, "val": -0.1}):
        with pytest.raises(ValueError, match="test|val"):
            random_split(df, **kwargs)
