"""CUPED: a smaller A/B interval from the same users, by removing the part of the metric that pre-experiment data predicts.

Each user's metric ``y`` is adjusted by their pre-experiment covariate ``x`` (the same metric
measured before the experiment, when every user saw the same system):
``y - theta (x - mean(x))`` with ``theta = cov(x, y) / var(x)`` over both arms. Assignment is
random, so ``x`` does not depend on the arm and the adjustment leaves the expected difference
unchanged, while the variance of each arm's mean falls by the share of ``y``'s variance that
``x`` explains (Deng et al. 2013).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats


def _pair(y: Any, x: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.asarray(y, dtype=np.float64).ravel(), np.asarray(x, dtype=np.float64).ravel()
    if y.size != x.size or y.size < 2:
        raise ValueError(f"{name}: the metric and the covariate need one value per user, at least two users; "
                         f"got {y.size} and {x.size}")
    if not (np.isfinite(y).all() and np.isfinite(x).all()):
        raise ValueError(f"{name}: the metric or the covariate holds NaN or infinite values (fill a missing covariate first)")
    return y, x


def cuped_theta(y: Any, x: Any) -> float:
    """``cov(x, y) / var(x)``: the regression slope of the metric on the covariate."""
    y, x = _pair(y, x, "cuped_theta")
    variance = x.var(ddof=1)
    if variance == 0:
        raise ValueError("the covariate is constant: it cannot explain any of the metric's variance")
    return float(np.cov(x, y, ddof=1)[0, 1] / variance)


def _difference(a: np.ndarray, b: np.ndarray, alpha: float) -> dict[str, float]:
    """Difference of means ``b - a`` with its normal (Welch) interval and two-sided p-value."""
    se = float(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))
    diff = float(b.mean() - a.mean())
    z = stats.norm.ppf(1 - alpha / 2)
    p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return {"difference": diff, "low": float(diff - z * se), "high": float(diff + z * se), "se": se, "p_value": p}


def cuped_difference(y_a: Any, x_a: Any, y_b: Any, x_b: Any, *, alpha: float = 0.05) -> dict[str, Any]:
    """The A/B difference (treatment ``b`` minus control ``a``) of a metric, raw and CUPED-adjusted.

    ``x_a``/``x_b`` are the users' pre-experiment covariates. Returns ``theta`` (pooled over
    both arms), ``raw`` and ``adjusted`` (``{difference, low, high, se, p_value}``) and
    ``variance_reduction``: ``1 - se_adjusted**2 / se_raw**2``, the share of the difference's
    variance removed (the same users would give an interval as narrow as the adjusted one
    only with ``1 / (1 - variance_reduction)`` times as many of them).
    """
    y_a, x_a = _pair(y_a, x_a, "arm a")
    y_b, x_b = _pair(y_b, x_b, "arm b")
    x_all = np.concatenate([x_a, x_b])
    theta = cuped_theta(np.concatenate([y_a, y_b]), x_all)
    centre = x_all.mean()
    raw = _difference(y_a, y_b, alpha)
    adjusted = _difference(y_a - theta * (x_a - centre), y_b - theta * (x_b - centre), alpha)
    return {"theta": theta, "raw": raw, "adjusted": adjusted,
            "variance_reduction": 1.0 - adjusted["se"] ** 2 / raw["se"] ** 2 if raw["se"] > 0 else 0.0,
            "n_a": int(y_a.size), "n_b": int(y_b.size)}


__all__ = ["cuped_difference", "cuped_theta"]
