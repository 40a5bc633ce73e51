"""Paired comparisons: a shift hidden by between-user spread is found, identical systems are not, Holm as statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cdtl.evaluate import align_users, compare_to_reference, holm, paired_difference, per_system, report
from cdtl.paired import sign_flip_p_value, verdict


def _two_systems(n: int = 200, shift: float = 0.03, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-user scores with a large between-user spread and a small, consistent per-user gain of ``shift``."""
    rng = np.random.default_rng(seed)
    user_level = rng.uniform(0.0, 1.0, n)  # how easy each user is, for every system
    return user_level + shift + rng.normal(0.0, 0.01, n), user_level + rng.normal(0.0, 0.01, n)


def test_known_shift_found_where_unpaired_intervals_overlap():
    a, b = _two_systems()
    ra, rb = report({"x": a})["x"], report({"x": b})["x"]
    assert ra["low"] < rb["high"]  # the separate intervals overlap: unpaired, no difference would be claimed
    out = paired_difference(a, b, n_resamples=2000, seed=0)
    assert out["diff"] == pytest.approx(0.03, abs=0.003)
    assert 0.0 < out["low"] < 0.03 < out["high"]
    assert out["p"] == pytest.approx(1 / 2001)  # no sign flip reaches the observed mean: the smallest possible p
    assert out["n"] == 200 and out["mean_a"] - out["mean_b"] == pytest.approx(out["diff"])
    assert out["test"].startswith("two-sided paired sign-flip")


def test_identical_systems_give_zero_and_p_one():
    a, _ = _two_systems()
    out = paired_difference(a, a.copy())
    assert out["diff"] == 0.0 and out["low"] == 0.0 and out["high"] == 0.0
    assert out["p"] == 1.0
    assert verdict(out["low"], out["high"], out["p"]) == "within noise"


def test_noise_alone_is_rarely_significant():
    rng = np.random.default_rng(3)
    b = rng.uniform(size=300)
    a = b + rng.normal(0.0, 0.05, 300)  # no systematic difference
    out = paired_difference(a, b, n_resamples=2000)
    assert out["p"] > 0.05 and out["low"] < 0 < out["high"]


def test_sign_flip_matches_exhaustive_enumeration():
    d = np.array([0.5, 1.0, -0.25, 2.0])
    flips = np.array(np.meshgrid(*[[-1, 1]] * 4)).reshape(4, -1).T
    exact = np.mean(np.abs((flips * d).mean(axis=1)) >= abs(d.mean()) - 1e-12)  # 4 of 16 sign patterns
    assert sign_flip_p_value(d, n_resamples=20_000, seed=0) == pytest.approx(exact, abs=0.015)


def test_same_seed_same_numbers_other_seed_other_interval():
    a, b = _two_systems(shift=0.002)
    first, again = paired_difference(a, b, seed=5), paired_difference(a, b, seed=5)
    assert first == again
    other = paired_difference(a, b, seed=6)
    assert other["diff"] == first["diff"] and (other["low"], other["p"]) != (first["low"], first["p"])


def test_holm_matches_statsmodels():
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    rng = np.random.default_rng(0)
    for p in (rng.uniform(0, 0.2, 7), np.array([0.01, 0.04, 0.03, 0.04, 0.5]), np.array([0.3]), np.array([0.001, 0.9])):
        np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])


def test_holm_rejects_non_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        holm([0.1, 1.5])


def test_misaligned_users_refused_and_order_aligned():
    ta = pd.DataFrame({"user": ["u3", "u1", "u2"], "ndcg@10": [0.3, 0.1, 0.2]})
    tb = {"user": np.array(["u1", "u2", "u3"]), "ndcg@10": np.array([0.0, 0.1, 0.2])}
    users, a, b = align_users(ta, tb, "ndcg@10")
    assert users.tolist() == ["u1", "u2", "u3"] and a.tolist() == [0.1, 0.2, 0.3] and b.tolist() == [0.0, 0.1, 0.2]
    with pytest.raises(ValueError, match="1 only in table_a .*'u3'.*0 only in table_b"):
        align_users(ta, {"user": np.array(["u1", "u2"]), "ndcg@10": np.array([0.0, 0.1])}, "ndcg@10")
    with pytest.raises(ValueError, match="more than once"):
        align_users(ta, {"user": np.array(["u1", "u1", "u3"]), "ndcg@10": np.zeros(3)}, "ndcg@10")
    with pytest.raises(KeyError, match="no column 'recall@10'"):
        align_users(ta, tb, "recall@10")
    with pytest.raises(ValueError, match="1 and 2 values"):
        paired_difference([0.1], [0.1, 0.2])


def test_compare_to_reference_from_a_long_per_user_table():
    a, b = _two_systems(n=120)
    same = b + np.random.default_rng(9).normal(0.0, 0.01, b.size)
    users = [f"u{i}" for i in range(b.size)]
    long = pd.concat([pd.DataFrame({"model": name, "user": users[::-1] if name == "a" else users,
                                    "ndcg@10": values[::-1] if name == "a" else values})
                      for name, values in (("ref", b), ("a", a), ("same", same), ("worse", b - 0.05))])
    table = compare_to_reference(long, "ref", metric="ndcg@10", n_resamples=500)
    assert list(table.index) == ["a", "same", "worse"]
    assert table.loc["a", "verdict"] == "better" and table.loc["worse", "verdict"] == "worse"
    assert table.loc["same", "verdict"] == "within noise"
    assert table.loc["a", "diff"] == pytest.approx(0.03, abs=0.003) and (table["n"] == 120).all()
    np.testing.assert_allclose(table["p_holm"], holm(table["p"].to_numpy()))
    # the same comparison from aligned arrays gives the same numbers
    arrays = per_system(long, "ndcg@10")
    again = compare_to_reference(arrays, "ref", n_resamples=500)
    pd.testing.assert_frame_equal(table, again)
    with pytest.raises(ValueError, match="different users"):
        per_system(long[~((long["model"] == "same") & (long["user"] == "u0"))], "ndcg@10")
    errors = compare_to_reference({"ref": b, "a": a}, "ref", n_resamples=200, higher_is_better=False)
    assert errors.loc["a", "verdict"] == "worse"  # a larger error is worse
    with pytest.raises(KeyError, match="reference 'nope'"):
        compare_to_reference(arrays, "nope")
