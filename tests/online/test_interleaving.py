"""Team-draft interleaving is fair, prefers the better ranker and needs fewer users than an A/B test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cdtl.online.interleaving import detection_rates, preferences, sign_test, team_draft, users_for_power


def test_team_draft_interleaves_fairly():
    rng = np.random.default_rng(0)
    a, b = np.arange(20), np.arange(20)[::-1]
    for _ in range(50):
        items, teams = team_draft(a, b, 10, rng)
        assert len(items) == 10 == len(set(items.tolist()))
        assert abs(int((teams == 0).sum()) - int((teams == 1).sum())) <= 1
        for team, ranking in ((0, a), (1, b)):  # each team's picks keep its own order
            mine = items[teams == team]
            positions = [int(np.flatnonzero(ranking == x)[0]) for x in mine]
            assert positions == sorted(positions)
    same, _ = team_draft(a, a, 10, rng)
    assert same.tolist() == list(range(10))


def test_interleaving_prefers_the_better_ranker_and_needs_fewer_users():
    rng = np.random.default_rng(0)
    n_users, n_items = 3000, 200
    relevant = [rng.choice(n_items, 3, replace=False) for _ in range(n_users)]
    good = [np.concatenate([r[rng.random(3) < 0.5], rng.permutation(n_items)]) for r in relevant]
    good = [pd_unique(g)[:20] for g in good]
    worse = [pd_unique(np.concatenate([r[rng.random(3) < 0.35], rng.permutation(n_items)]))[:20] for r in relevant]
    prefs = preferences(np.array(worse), np.array(good), relevant, k=10, seed=0)
    assert sign_test(prefs)["share_b"] > 0.55 and sign_test(prefs)["p_value"] < 1e-6
    assert sign_test(prefs)["p_value"] == pytest.approx(
        stats.binomtest(int((prefs > 0).sum()), int((prefs != 0).sum()), 0.5).pvalue)
    hits_a = np.array([np.isin(w[:10], r).any() for w, r in zip(worse, relevant)], float)
    hits_b = np.array([np.isin(g[:10], r).any() for g, r in zip(good, relevant)], float)
    rates = detection_rates(hits_a, hits_b, prefs, [100, 200, 400, 800, 1600, 3200], draws=300, seed=0)
    ab, inter = users_for_power(rates, "ab_power"), users_for_power(rates, "interleaving_power")
    assert inter is not None and (ab is None or ab > 2 * inter)
    assert (rates["interleaving_power"].diff().dropna() >= -0.05).all()


def pd_unique(values: np.ndarray) -> np.ndarray:
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]
