"""Genre domains: each item in exactly one domain, what is left out counted, bad genres refused; the users both share."""

from __future__ import annotations

import pandas as pd
import pytest
from movielens_domains import ml100k_domains  # noqa: F401  (fixture)

from cdtl.data import RecData, load_movielens, overlap_users, split_by_genre


def test_genre_split_assigns_each_item_to_exactly_one_domain(ml100k_domains):
    data = ml100k_domains
    assert data.domains == ["action", "comedy"]
    src, tgt = {"Action", "Adventure", "Thriller"}, {"Comedy", "Romance", "Children's"}
    for genres, dom in zip(data.items["genres"], data.items["domain"]):
        mine, other = (src, tgt) if dom == "action" else (tgt, src)
        assert mine.intersection(genres) and not other.intersection(genres)
    ex = data.notes["excluded"]
    full = load_movielens("movielens-100k")
    assert len(data.items) + ex["items_in_both_groups"] + ex["items_in_neither_group"] == len(full.items)
    assert len(data.interactions) + ex["interactions"] == len(full.interactions)
    summary = data.summary()
    assert summary["overlap_users"] == 936  # MovieLens 100K, default genre split
    assert summary["domains"]["action"]["interactions"] + summary["domains"]["comedy"]["interactions"] == 63_758


def test_genre_split_rejects_bad_genres():
    data = load_movielens("movielens-100k")
    with pytest.raises(ValueError, match="do not occur"):
        split_by_genre(data, ["Action"], ["Cartoons"])
    with pytest.raises(ValueError, match="both domains"):
        split_by_genre(data, ["Action", "Comedy"], ["Comedy"])


def test_overlap_users_are_the_sorted_users_of_both_domains():
    inter = pd.DataFrame({"user": ["c", "a", "b", "c", "a", "d"], "item": ["s1", "s1", "s2", "t1", "t2", "t1"],
                          "domain": ["src", "src", "src", "tgt", "tgt", "tgt"]})
    items = pd.DataFrame({"item": ["s1", "s2", "t1", "t2"], "domain": ["src", "src", "tgt", "tgt"]})
    data = RecData("toy", inter, items)
    assert overlap_users(data, "src", "tgt").tolist() == ["a", "c"]
    with pytest.raises(ValueError, match="unknown domain 'books'; toy has domains"):
        overlap_users(data, "src", "books")
