"""The two standard single-domain evaluation splits (per-user ranking, global random ratings), seeded and exact."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cdtl.data.tables import check_unique_pairs, require_columns

#: users with fewer interactions than this keep all of them in training (see ``per_user_split``)
MIN_INTERACTIONS_TO_SPLIT = 3


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5).astype(np.int64)


def per_user_split(
    interactions: pd.DataFrame,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, val, test): each user's interactions shuffled and cut into train/val/test fractions.

    The standard protocol for top-k ranking: every user appears in training, and their
    held-out items are the ones to rank. For a user with n interactions, test gets
    ``round(n * fractions[2])`` of them and validation ``round(n * fractions[1])``
    (halves round up), but at least one each when that fraction is positive; training
    gets the rest. Users with fewer than 3 interactions keep everything in training (they
    have nothing to spare), so they never appear in ``val`` or ``test``.

    The shuffle comes from ``numpy.random.default_rng(seed)``: the same table (in the same
    row order) and seed give the same split. Each part keeps the input's columns and row
    order, with a fresh 0..n-1 index; every input row is in exactly one part.
    """
    require_columns(interactions, ("user",), "per_user_split: interactions")
    if "item" in interactions.columns:
        check_unique_pairs(interactions, "per_user_split: interactions")
    if len(fractions) != 3:
        raise ValueError(f"fractions must be (train, val, test), got {fractions!r}")
    f_train, f_val, f_test = (float(f) for f in fractions)
    if min(f_train, f_val, f_test) < 0 or f_train <= 0 or f_test <= 0 or abs(f_train + f_val + f_test - 1.0) > 1e-9:
        raise ValueError(
            f"fractions must be non-negative, sum to 1, with positive train and test parts (e.g. (0.8, 0.1, 0.1)); "
            f"got {fractions!r}"
        )
    n = len(interactions)
    codes, _ = pd.factorize(interactions["user"], sort=True)
    counts = np.bincount(codes)
    # a random order of the rows, then grouped by user (stable), so each user's rows are shuffled
    order = np.random.default_rng(seed).permutation(n)
    order = order[np.argsort(codes[order], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[codes[order]]

    n_test = np.maximum(1, _round_half_up(counts * f_test))
    n_val = np.maximum(1, _round_half_up(counts * f_val)) if f_val > 0 else np.zeros_like(counts)
    too_few = counts < MIN_INTERACTIONS_TO_SPLIT
    n_test[too_few] = 0
    n_val[too_few] = 0
    n_train = counts - n_val - n_test
    if (n_train < 1).any():
        raise ValueError(
            f"fractions={fractions!r} leave some users with no training interaction; raise the training fraction"
        )
    user_train = n_train[codes]
    part = np.where(rank < user_train, 0, np.where(rank < user_train + n_val[codes], 1, 2))
    return tuple(interactions[part == p].reset_index(drop=True) for p in (0, 1, 2))  # type: ignore[return-value]


def random_split(
    interactions: pd.DataFrame,
    test: float = 0.1,
    val: float = 0.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, val, test): a global random split of the rows, the explicit-rating protocol (e.g. 90/10).

    ``round(n * test)`` random rows go to test and ``round(n * val)`` to validation
    (``val=0`` gives an empty validation frame); the rest train. Unlike ``per_user_split``,
    a user or item may end up only in val or test: encode them with an ``IdMap`` fitted on
    every interaction, or drop them with ``IdMap.encode(..., missing="ignore")``.
    Deterministic per ``seed`` and input row order; parts keep the input's row order.
    """
    for name, value in (("test", test), ("val", val)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1), got {value}")
    if test <= 0.0:
        raise ValueError(f"test must be positive, got {test}")
    if test + val >= 1.0:
        raise ValueError(f"test + val must leave some training rows, got test={test}, val={val}")
    if {"user", "item"} <= set(interactions.columns):
        check_unique_pairs(interactions, "random_split: interactions")
    n = len(interactions)
    n_test, n_val = int(_round_half_up(np.array(n * test))), int(_round_half_up(np.array(n * val)))
    if n_test == 0 or n - n_test - n_val < 1:
        raise ValueError(f"{n} interaction(s) are too few for test={test}, val={val}")
    order = np.random.default_rng(seed).permutation(n)
    part = np.zeros(n, dtype=np.int64)
    part[order[:n_test]] = 2
    part[order[n_test : n_test + n_val]] = 1
    return tuple(interactions[part == p].reset_index(drop=True) for p in (0, 1, 2))  # type: ignore[return-value]
