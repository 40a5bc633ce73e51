"""Offline A/B testing on held-out users: assignment by hash, the tests a team runs, power, and what peeking does.

The experiment replays held-out interactions: every test user is assigned to control or
treatment by a hash of their id (stable, no table to store, the same user always in
the same arm), served by their arm's recommender, and scored on what they really did
next (hit@10: did any held-out item reach the top 10; NDCG@10).

- ``two_proportion_test``: the z test of a difference in hit rates (pooled variance,
  as ``statsmodels.stats.proportion.proportions_ztest``) with a Wald interval;
- ``bootstrap_difference``: a percentile bootstrap interval for a difference in means
  (NDCG@10 is not a proportion);
- ``srm_check``: the sample-ratio-mismatch test: are the arms the sizes the split
  promised (a chi-square test; a tiny p-value means the assignment is broken and no
  other number of the experiment can be trusted);
- ``users_needed`` and ``power_curve``: users per arm to detect a lift at given alpha and
  power (``statsmodels`` ``NormalIndPower`` with Cohen's h);
- ``simulate_experiments``: with both arms the same system (an A/A test) and one look at
  the end, the share of "significant" results is alpha; looking after every batch of
  users and stopping at the first p < alpha inflates it; ``msprt`` (the mixture
  sequential probability ratio test, an always-valid p-value) may be checked after
  every batch and keeps it at most alpha, at a price in power the same function measures.

Team-draft interleaving, which needs far fewer users, lives in ``cdtl.serve.interleaving``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def assign(user_ids: Iterable[Any], *, salt: str = "experiment", treatment_share: float = 0.5) -> np.ndarray:
    """(n,) bool, True for treatment: ``sha256(salt:user)`` read as a number in [0, 1) below ``treatment_share``.

    A new ``salt`` per experiment reshuffles users, so one experiment's arms do not
    become the next one's.
    """
    if not 0.0 < treatment_share < 1.0:
        raise ValueError(f"treatment_share must be strictly between 0 and 1, got {treatment_share}")
    out = []
    for user in user_ids:
        digest = hashlib.sha256(f"{salt}:{user}".encode()).digest()
        out.append(int.from_bytes(digest[:8], "big") / 2**64 < treatment_share)
    return np.asarray(out, dtype=bool)


def two_proportion_test(successes_a: int, n_a: int, successes_b: int, n_b: int, *, alpha: float = 0.05) -> dict[str, float]:
    """B minus A in success rate: z (pooled variance), two-sided p-value, and a Wald (1 - alpha) interval."""
    for name, value in (("n_a", n_a), ("n_b", n_b)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    p_a, p_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se_pooled = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (p_b - p_a) / se_pooled if se_pooled > 0 else 0.0
    se = np.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    half = stats.norm.ppf(1 - alpha / 2) * se
    return {"rate_a": p_a, "rate_b": p_b, "difference": p_b - p_a, "z": float(z),
            "p_value": float(2 * stats.norm.sf(abs(z))), "low": p_b - p_a - half, "high": p_b - p_a + half}


def bootstrap_difference(values_a: Any, values_b: Any, *, n_resamples: int = 2000, alpha: float = 0.05,
                         seed: int = 0) -> dict[str, float]:
    """mean(B) - mean(A) with a percentile bootstrap (1 - alpha) interval, each arm resampled on its own."""
    a, b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("both arms need at least one user")
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    for start in range(0, n_resamples, 256):  # in blocks: memory stays small for large arms
        m = min(256, n_resamples - start)
        diffs[start:start + m] = (b[rng.integers(0, len(b), (m, len(b)))].mean(1)
                                  - a[rng.integers(0, len(a), (m, len(a)))].mean(1))
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return {"difference": float(b.mean() - a.mean()), "low": float(low), "high": float(high)}


def srm_check(n_a: int, n_b: int, *, expected_share_b: float = 0.5, threshold: float = 0.001) -> dict[str, Any]:
    """Sample-ratio mismatch: chi-square of the arm sizes against the planned split; ``mismatch`` when p < threshold."""
    total = n_a + n_b
    expected = [total * (1 - expected_share_b), total * expected_share_b]
    chi2, p = stats.chisquare([n_a, n_b], expected)
    return {"n_a": int(n_a), "n_b": int(n_b), "share_b": n_b / total if total else float("nan"),
            "chi2": float(chi2), "p_value": float(p), "mismatch": bool(p < threshold)}


def users_needed(p_control: float, lift: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0) -> int:
    """Users in the control arm (treatment: ``ratio`` times as many) to detect ``p_control`` -> ``p_control + lift``."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    p_treat = p_control + lift
    if not (0 < p_control < 1 and 0 < p_treat < 1) or lift == 0:
        raise ValueError(f"rates must lie in (0, 1) and differ: {p_control} -> {p_treat}")
    effect = abs(proportion_effectsize(p_treat, p_control))
    n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=ratio, alternative="two-sided")
    return int(np.ceil(n))


def power_curve(p_control: float, lifts: Iterable[float], *, alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """Users per arm (and in all) to detect each absolute ``lift`` of the control rate."""
    rows = [{"lift": lift, "relative_lift": lift / p_control,
             "users_per_arm": users_needed(p_control, lift, alpha=alpha, power=power)} for lift in lifts]
    frame = pd.DataFrame(rows)
    frame["users_total"] = 2 * frame["users_per_arm"]
    return frame


def msprt_lambda(diff: np.ndarray, variance: np.ndarray, tau2: float) -> np.ndarray:
    """The mixture likelihood ratio of a normal mean difference with a N(0, tau2) mixing prior.

    ``diff``: the observed difference; ``variance``: its variance (sigma^2 (1/n_a + 1/n_b)).
    1 / Lambda is an always-valid p-value: rejecting when Lambda >= 1/alpha keeps the false
    positive rate at most alpha however often one looks (Johari et al., 2017).
    """
    v = np.maximum(variance, 1e-300)
    return np.sqrt(v / (v + tau2)) * np.exp(diff**2 * tau2 / (2 * v * (v + tau2)))


def simulate_experiments(control: Any, treatment: Any = None, *, n_users: int, looks: int = 1, n_sims: int = 2000,
                         alpha: float = 0.05, method: str = "z", tau: float | None = None, seed: int = 0) -> dict[str, Any]:
    """How often ``n_sims`` simulated experiments declare a difference: the false-positive rate of an A/A test
    (``treatment`` None: both arms draw from ``control``) or the power against ``treatment``.

    Each experiment draws ``n_users`` users, assigns each to an arm at random, takes their
    0/1 outcome from their arm's pool (with replacement), and tests after each of
    ``looks`` equal batches, stopping at the first rejection. ``method="z"``: the
    two-proportion z test at every look (looking more than once is peeking); ``"msprt"``:
    the always-valid test (``tau``: the size of difference it is tuned to find, the scale
    of its mixing prior; default three standard errors of the difference at the last
    look). Returns the rate with a 95 % interval.
    """
    if method not in ("z", "msprt"):
        raise ValueError(f"method must be 'z' or 'msprt', got {method!r}")
    if looks < 1 or n_users < 2 * looks:
        raise ValueError(f"need looks >= 1 and at least two users per look, got looks={looks}, n_users={n_users}")
    pool_a = np.asarray(control, dtype=np.float64)
    pool_b = pool_a if treatment is None else np.asarray(treatment, dtype=np.float64)
    rng = np.random.default_rng(seed)
    marks = np.linspace(n_users / looks, n_users, looks).astype(int)
    tau2 = (tau if tau is not None else 3 * 2 * np.sqrt(pool_a.var() / n_users)) ** 2
    rejected = np.zeros(n_sims, dtype=bool)
    for start in range(0, n_sims, 200):  # in blocks of experiments: memory stays small
        m = min(200, n_sims - start)
        arm = rng.random((m, n_users)) < 0.5
        y = np.where(arm, pool_b[rng.integers(0, len(pool_b), (m, n_users))], pool_a[rng.integers(0, len(pool_a), (m, n_users))])
        s_b, n_b = np.cumsum(y * arm, 1)[:, marks - 1], np.cumsum(arm, 1)[:, marks - 1]
        s_a, n_a = np.cumsum(y * ~arm, 1)[:, marks - 1], marks[None, :] - n_b
        ok = (n_a > 0) & (n_b > 0)
        n_a, n_b = np.maximum(n_a, 1), np.maximum(n_b, 1)
        p_a, p_b = s_a / n_a, s_b / n_b
        pooled = (s_a + s_b) / (n_a + n_b)
        variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
        if method == "z":
            z = np.where(variance > 0, (p_b - p_a) / np.sqrt(np.maximum(variance, 1e-300)), 0.0)
            reject = 2 * stats.norm.sf(np.abs(z)) < alpha
        else:
            reject = msprt_lambda(p_b - p_a, variance, tau2) >= 1 / alpha
        rejected[start:start + m] = (reject & ok).any(1)
    rate = float(rejected.mean())
    half = 1.96 * float(np.sqrt(rate * (1 - rate) / n_sims))
    return {"rate": rate, "low": max(0.0, rate - half), "high": min(1.0, rate + half), "looks": looks,
            "n_sims": n_sims, "n_users": n_users, "method": method, "alpha": alpha}


def ab_report(user_ids: Any, control: dict[str, np.ndarray], treatment: dict[str, np.ndarray], *, salt: str = "experiment",
              metric: str = "hit@10", continuous: str = "ndcg@10", alpha: float = 0.05, n_resamples: int = 2000,
              seed: int = 0) -> dict[str, Any]:
    """The A/B test of a replay: each user's arm by ``assign``, their metric from that arm's per-user values.

    ``control`` and ``treatment`` map metric names to per-user arrays aligned with
    ``user_ids`` (both systems scored every user offline; the assignment decides which
    of the two values an experiment would have observed).
    """
    in_b = assign(user_ids, salt=salt)
    a, b = np.asarray(control[metric])[~in_b], np.asarray(treatment[metric])[in_b]
    test = two_proportion_test(int(a.sum()), len(a), int(b.sum()), len(b), alpha=alpha)
    boot = bootstrap_difference(np.asarray(control[continuous])[~in_b], np.asarray(treatment[continuous])[in_b],
                                n_resamples=n_resamples, alpha=alpha, seed=seed)
    return {"assignment": in_b, "srm": srm_check(len(a), len(b)), metric: test, continuous: boot,
            "needed_per_arm": users_needed(test["rate_a"], max(abs(test["difference"]), 1e-3), alpha=alpha)
            if 0 < test["rate_a"] < 1 else None}


__all__ = ["ab_report", "assign", "bootstrap_difference", "msprt_lambda", "power_curve", "simulate_experiments",
           "srm_check", "two_proportion_test", "users_needed"]
