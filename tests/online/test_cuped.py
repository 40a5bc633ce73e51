"""CUPED against a hand computation: the slope, the adjusted difference, and the variance it removes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cdtl.online.cuped import cuped_difference, cuped_theta


def test_cuped_matches_a_hand_computation():
    x_a, y_a = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 5.0])
    x_b, y_b = np.array([2.0, 4.0]), np.array([4.0, 7.0])
    # pooled: x = 1 2 3 2 4 (mean 2.4), y = 2 3 5 4 7 (mean 4.2)
    # cov = [(-1.4)(-2.2) + (-0.4)(-1.2) + (0.6)(0.8) + (-0.4)(-0.2) + (1.6)(2.8)] / 4 = 8.6 / 4; var x = 5.2 / 4
    theta = 8.6 / 5.2
    assert cuped_theta(np.r_[y_a, y_b], np.r_[x_a, x_b]) == pytest.approx(theta)
    out = cuped_difference(y_a, x_a, y_b, x_b)
    adj_a, adj_b = y_a - theta * (x_a - 2.4), y_b - theta * (x_b - 2.4)
    assert out["adjusted"]["difference"] == pytest.approx(adj_b.mean() - adj_a.mean())
    assert out["raw"]["difference"] == pytest.approx(5.5 - 10 / 3)
    se_raw = math.sqrt(np.var(y_a, ddof=1) / 3 + np.var(y_b, ddof=1) / 2)
    se_adj = math.sqrt(np.var(adj_a, ddof=1) / 3 + np.var(adj_b, ddof=1) / 2)
    assert out["raw"]["se"] == pytest.approx(se_raw) and out["adjusted"]["se"] == pytest.approx(se_adj)
    assert out["variance_reduction"] == pytest.approx(1 - se_adj**2 / se_raw**2)
    assert out["adjusted"]["low"] == pytest.approx(out["adjusted"]["difference"] - 1.959964 * se_adj, rel=1e-5)


def test_a_predictive_covariate_narrows_the_interval_without_moving_the_difference():
    rng = np.random.default_rng(0)
    n = 4000
    level = rng.normal(0, 1, 2 * n)  # each user's habit: it shows before and during the experiment
    x = level + rng.normal(0, 0.3, 2 * n)
    y = level + rng.normal(0, 0.3, 2 * n) + np.r_[np.zeros(n), np.full(n, 0.03)]  # treatment adds 0.03
    out = cuped_difference(y[:n], x[:n], y[n:], x[n:])
    assert out["variance_reduction"] > 0.8  # corr(x, y)^2 = (1 / 1.09)^2 = 0.84
    assert out["adjusted"]["low"] < 0.03 < out["adjusted"]["high"] and out["adjusted"]["low"] > 0
    assert out["adjusted"]["se"] < 0.5 * out["raw"]["se"]  # the same users, an interval less than half as wide
    unrelated = cuped_difference(y[:n], rng.normal(size=n), y[n:], rng.normal(size=n))
    assert abs(unrelated["variance_reduction"]) < 0.01


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one value per user"):
        cuped_difference([1.0, 2.0], [1.0], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        cuped_difference([1.0, np.nan], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="constant"):
        cuped_theta([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
