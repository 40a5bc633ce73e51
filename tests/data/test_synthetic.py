"""The synthetic two-domain set: seeded, distinct pairs, skewed popularity and activity, many users in both domains."""

from __future__ import annotations

import numpy as np

from cdtl.data.columnar import read_interactions
from cdtl.data.synthetic import synthetic_two_domain


def test_synthetic_data_is_seeded_distinct_and_skewed(tmp_path):
    a, b = synthetic_two_domain(20_000, seed=3), synthetic_two_domain(20_000, seed=3)
    np.testing.assert_array_equal(a.u, b.u)
    np.testing.assert_array_equal(a.i, b.i)
    assert len(a) == 20_000 and a.n_items == 1_000
    assert np.unique(a.u.astype(np.int64) * a.n_items + a.i).size == 20_000  # distinct pairs
    assert np.bincount(a.u).min() >= 1 and a.u.max() == a.n_users - 1
    pop = np.sort(np.bincount(a.i, minlength=a.n_items))[::-1]
    assert pop[:10].sum() > 0.2 * len(a) and pop[-500:].sum() < 0.15 * len(a)  # top 1 % of items: > 20 %; bottom half: < 15 %
    activity = np.sort(np.bincount(a.u))[::-1]
    assert activity[0] > 5 * np.median(activity)
    both = np.intersect1d(a.u[a.domain == 0], a.u[a.domain == 1]).size
    assert 0.3 * a.n_users < both < a.n_users  # many users, not all, are active in both domains
    inter_path, items_path = a.write_parquet(tmp_path)
    back = read_interactions(inter_path, items_path)
    assert len(back) == 20_000 and len(back.items) == a.n_items and back.domains == ("A", "B")
    np.testing.assert_array_equal(back.users.decode(back.u), np.char.add("u", a.u.astype(str)).astype(object))
    assert synthetic_two_domain(20_000, seed=4).u.tolist() != a.u.tolist()
