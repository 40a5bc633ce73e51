"""MovieLens 100K split into its two genre domains, loaded once per test module."""

from __future__ import annotations

import pytest

from cdtl.data import RecData, load_movielens, split_by_genre


@pytest.fixture(scope="module")
def ml100k_domains() -> RecData:
    return split_by_genre(load_movielens("movielens-100k"))
