"""Datasets by name: MovieLens alone or split by genre, an unknown name or split refused, the real Amazon pair with its counts."""

from __future__ import annotations

import pytest

from cdtl.data import info, load
from cdtl.data.download import FetchError


@pytest.mark.slow
def test_real_amazon_pair_loads_through_the_own_tables_path():
    try:
        data = load("amazon-food-kitchen")
    except FetchError as err:
        pytest.skip(f"the shared Amazon Food-Kitchen data is not on this machine: {err}")
    summary = data.summary()
    assert summary["overlap_users"] == 9398
    assert summary["domains"]["food"]["items"] == 8661 and summary["domains"]["kitchen"]["items"] == 27637
    assert summary["interactions"] == 436_127 and summary["users"] == 53_061
    assert not data.has_ratings
    assert not data.items["text"].str.contains("&amp;").any()


def test_a_registered_movielens_loads_by_name_alone_or_split_by_genre():
    plain = load("movielens-100k")
    assert plain.domains == [] and len(plain.interactions) == 100_000 and plain.has_ratings
    split = load("movielens-100k", domains="genre")
    assert split.domains == ["action", "comedy"] and split.summary() == info("movielens-100k", domains="genre")
    with pytest.raises(ValueError, match="unknown domain split 'year'; expected 'genre'"):
        load("movielens-100k", domains="year")
    with pytest.raises(KeyError, match="unknown dataset 'movielens-20m'; registered datasets"):
        load("movielens-20m")
