"""The A/B statistics agree with statsmodels and scipy, and A/A tests keep alpha with one look."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cdtl.online.abtest import (
    ab_report,
    assign,
    bootstrap_difference,
    msprt_lambda,
    power_curve,
    simulate_experiments,
    srm_check,
    two_proportion_test,
    users_needed,
)


def test_assignment_is_a_stable_hash_split_that_a_salt_reshuffles():
    users = [f"user{i}" for i in range(20_000)]
    arms = assign(users, salt="exp-1")
    assert np.array_equal(arms, assign(users, salt="exp-1")) and abs(arms.mean() - 0.5) < 0.015
    assert 0.4 < (arms == assign(users, salt="exp-2")).mean() < 0.6  # another experiment, other arms
    assert abs(assign(users, salt="x", treatment_share=0.1).mean() - 0.1) < 0.01
    with pytest.raises(ValueError, match="treatment_share"):
        assign(users, treatment_share=1.0)


@pytest.mark.parametrize("sa, na, sb, nb", [(120, 1000, 150, 1000), (45, 300, 30, 280), (5000, 10_000, 5090, 10_200)])
def test_two_proportion_test_agrees_with_statsmodels(sa, na, sb, nb):
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    mine = two_proportion_test(sa, na, sb, nb)
    z, p = proportions_ztest([sb, sa], [nb, na])
    low, high = confint_proportions_2indep(sb, nb, sa, na, method="wald", compare="diff")
    assert mine["z"] == pytest.approx(z, rel=1e-10) and mine["p_value"] == pytest.approx(p, rel=1e-10)
    assert (mine["low"], mine["high"]) == pytest.approx((low, high), rel=1e-10)


def test_bootstrap_interval_agrees_with_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.exponential(1.0, 400), rng.exponential(1.2, 500)
    mine = bootstrap_difference(a, b, n_resamples=4000, seed=1)
    ref = stats.bootstrap((b, a), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), method="percentile",
                          n_resamples=4000, random_state=2, vectorized=True).confidence_interval
    assert mine["difference"] == pytest.approx(b.mean() - a.mean())
    assert mine["low"] == pytest.approx(ref.low, abs=0.02) and mine["high"] == pytest.approx(ref.high, abs=0.02)


def test_sample_ratio_mismatch_is_scipys_chi_square():
    ok, bad = srm_check(5020, 4980), srm_check(5200, 4800)
    assert ok["p_value"] == pytest.approx(stats.chisquare([5020, 4980]).pvalue) and not ok["mismatch"]
    assert bad["mismatch"] and bad["p_value"] < 1e-4


def test_users_needed_matches_the_closed_form_and_the_curve_falls_with_the_lift():
    p0, lift = 0.30, 0.03
    h = 2 * np.arcsin(np.sqrt(p0 + lift)) - 2 * np.arcsin(np.sqrt(p0))  # Cohen's h; 2 arcsin sqrt(p) has variance 1/n
    closed = 2 * ((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / h) ** 2  # per arm: the difference has variance 2/n
    assert abs(users_needed(p0, lift) - closed) <= 1
    curve = power_curve(p0, [0.01, 0.02, 0.05])
    assert curve["users_per_arm"].is_monotonic_decreasing and (curve["users_total"] == 2 * curve["users_per_arm"]).all()


def test_an_aa_test_with_one_look_keeps_alpha_and_peeking_does_not():
    outcomes = np.random.default_rng(0).random(5000) < 0.4
    one = simulate_experiments(outcomes, n_users=2000, looks=1, n_sims=2000, seed=0)
    assert abs(one["rate"] - 0.05) <= 0.01
    peeking = simulate_experiments(outcomes, n_users=2000, looks=20, n_sims=2000, seed=0)
    assert peeking["rate"] > 0.12
    sequential = simulate_experiments(outcomes, n_users=2000, looks=20, n_sims=2000, method="msprt", seed=0)
    assert sequential["rate"] <= 0.05 + 0.01


def test_the_sequential_test_still_detects_a_real_difference():
    lam = msprt_lambda(np.array([0.0, 0.05]), np.array([1e-4, 1e-4]), tau2=1e-4)
    assert lam[0] < 1 < 20 < lam[1]
    rng = np.random.default_rng(1)
    control, treatment = rng.random(5000) < 0.40, rng.random(5000) < 0.48
    power = simulate_experiments(control, treatment, n_users=2000, looks=20, n_sims=500, method="msprt", seed=0)
    fixed = simulate_experiments(control, treatment, n_users=2000, looks=1, n_sims=500, seed=0)
    assert 0.4 < power["rate"] < fixed["rate"]  # it detects, at a price in power


def test_ab_report_reads_each_users_arm():
    users = [f"u{i}" for i in range(4000)]
    rng = np.random.default_rng(1)
    control = {"hit@10": (rng.random(4000) < 0.3).astype(float), "ndcg@10": rng.random(4000) * 0.3}
    treatment = {"hit@10": (rng.random(4000) < 0.4).astype(float), "ndcg@10": rng.random(4000) * 0.4}
    report = ab_report(users, control, treatment, n_resamples=500)
    in_b = report["assignment"]
    assert report["hit@10"]["rate_b"] == pytest.approx(treatment["hit@10"][in_b].mean())
    assert report["hit@10"]["rate_a"] == pytest.approx(control["hit@10"][~in_b].mean())
    assert report["hit@10"]["p_value"] < 1e-6 and not report["srm"]["mismatch"]
    assert report["ndcg@10"]["low"] > 0
