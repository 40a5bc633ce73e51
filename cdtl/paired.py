"""Comparisons of systems scored on the same users: per-user differences, paired intervals, p-values and Holm's correction.

Two systems evaluated on the same test users differ by a per-user amount; most of the spread
of either system's scores is between users (some users are easy for every model), and the
difference cancels it. Deciding "A beats B" from whether two separate intervals overlap keeps
that spread in and misses real differences; these functions do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cdtl.metrics import bootstrap_ci

#: the test behind every p-value of this module, as the tables name it
P_VALUE_TEST = "two-sided paired sign-flip permutation test of the mean difference"
WITHIN_NOISE = "within noise"


def _values(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-user values, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: no users to compare")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return array


def sign_flip_p_value(diff: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> float:
    """Two-sided p-value of "the mean per-user difference is 0" by flipping each user's sign at random.

    Under the null hypothesis a user's difference is as likely to be +d as -d, so the observed
    mean is compared with the means of ``n_resamples`` random sign flips; the p-value counts
    the observed statistic as one of them, ``(1 + #{|flipped| >= |observed|}) / (1 + n_resamples)``,
    so it is never 0 and is exactly 1 when every difference is 0. Deterministic per seed.
    """
    d = _values(diff, "diff")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    observed = abs(d.mean())
    rng = np.random.default_rng([int(seed), 1])  # a stream of its own: the bootstrap uses ``seed`` itself
    chunk = max(1, 4_000_000 // d.size)
    extreme = 0
    tolerance = 1e-12 * max(1.0, float(np.abs(d).max()))
    for start in range(0, n_resamples, chunk):
        signs = rng.integers(0, 2, size=(min(chunk, n_resamples - start), d.size)) * 2 - 1
        extreme += int((np.abs((signs * d).mean(axis=1)) >= observed - tolerance).sum())
    return (1 + extreme) / (1 + n_resamples)


def paired_difference(a: Any, b: Any, *, n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """Mean per-user difference ``a - b`` of two systems scored on the same users, in the same order.

    Returns ``{diff, low, high, p, n, mean_a, mean_b, test}``: the mean difference, its
    (1 - alpha) percentile-bootstrap interval (users resampled with replacement, the same
    resample for both systems, i.e. the bootstrap of the per-user differences with
    ``cdtl.metrics.bootstrap_ci``), the p-value of ``sign_flip_p_value``, the number of users,
    each system's mean and the name of the test. Use ``align_users`` first when the two come
    from tables that may list users differently.
    """
    x, y = _values(a, "a"), _values(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must hold one value per user for the same users, got {x.size} and {y.size} values")
    d = x - y
    diff, low, high = bootstrap_ci(d, n_resamples=n_resamples, alpha=alpha, seed=seed)
    return {"diff": diff, "low": low, "high": high, "p": sign_flip_p_value(d, n_resamples, seed),
            "n": int(d.size), "mean_a": float(x.mean()), "mean_b": float(y.mean()), "test": P_VALUE_TEST}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of p-values (familywise error rate), in the order given.

    The smallest of m p-values is multiplied by m, the next by m - 1, ..., each adjusted value
    is at least the one before it in that order, and none passes 1.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or ((p < 0) | (p > 1) | np.isnan(p)).any():
        raise ValueError("p_values must be a 1-D sequence of probabilities in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def align_users(table_a: Any, table_b: Any, metric: str, *, user: str = "user") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, a, b): one metric of two per-user tables, aligned on user id (sorted).

    Each table is a DataFrame or a mapping of arrays with a ``user`` column and the metric.
    Different user sets, or a user listed twice in one table, are refused: a paired
    comparison compares the same users, nothing is silently dropped.
    """
    ua, a = _user_series(table_a, metric, user, "table_a")
    ub, b = _user_series(table_b, metric, user, "table_b")
    only_a, only_b = np.setdiff1d(ua, ub), np.setdiff1d(ub, ua)
    if only_a.size or only_b.size:
        raise ValueError(f"the two tables score different users: {only_a.size} only in table_a (e.g. {only_a[:3].tolist()}), "
                         f"{only_b.size} only in table_b (e.g. {only_b[:3].tolist()}); compare systems on the same users")
    oa, ob = np.argsort(ua, kind="stable"), np.argsort(ub, kind="stable")
    return ua[oa], a[oa], b[ob]


def _user_series(table: Any, metric: str, user: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    for column in (user, metric):
        if column not in table:
            raise KeyError(f"{name} has no column {column!r}; it has {list(table.keys())}")
    users, values = np.asarray(table[user]), _values(table[metric], f"{name}[{metric!r}]")
    if users.shape != values.shape:
        raise ValueError(f"{name}: {users.size} users but {values.size} values of {metric!r}")
    distinct, counts = np.unique(users, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{name} lists {int((counts > 1).sum())} user(s) more than once (e.g. "
                         f"{distinct[counts > 1][:3].tolist()}); "
                         "filter it to one seed, cold ratio and task first")
    return users, values


def per_system(per_user: Any, metric: str, *, system: str = "model", user: str = "user",
               systems: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """{system: values of ``metric``}, aligned on the same users, from a long per-user table (``result.per_user``).

    ``per_user`` has one row per (system, user) (filter it to one seed, cold ratio and task);
    ``systems`` picks and orders the systems (default: their order of appearance). Systems
    that scored different users are refused.
    """
    for column in (system, user, metric):
        if column not in per_user:
            raise KeyError(f"the per-user table has no column {column!r}; it has {list(per_user.columns)}")
    names = list(dict.fromkeys(per_user[system])) if systems is None else list(systems)
    missing = [s for s in names if not (per_user[system] == s).any()]
    if missing:
        raise KeyError(f"no rows for system(s) {missing} in the per-user table; it has {sorted(set(per_user[system]))}")
    tables = {s: per_user[per_user[system] == s] for s in names}
    first = names[0]
    out: dict[str, np.ndarray] = {}
    for s in names:
        _, out[first], out[s] = align_users(tables[first], tables[s], metric, user=user)
    return out


def compare_to_reference(per_user: Mapping[str, Any] | Any, reference: str, *, metric: str | None = None,
                         n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05,
                         systems: Sequence[str] | None = None, higher_is_better: bool = True) -> Any:
    """A DataFrame with each system's paired difference from ``reference``, Holm-corrected across the table.

    ``per_user`` is ``{system: per-user values}`` aligned on the same users, or a long per-user
    table (``result.per_user``, then ``metric`` names the column). One row per other system:
    ``mean``, ``diff`` (system minus reference), ``low``/``high`` (paired bootstrap interval),
    ``p`` (``P_VALUE_TEST``), ``p_holm`` (Holm's adjustment over the rows), ``n`` and
    ``verdict``: ``"better"``/``"worse"`` than the reference (higher/lower, or the reverse for an
    error with ``higher_is_better=False``) when the interval excludes 0 and ``p_holm < alpha``,
    else ``"within noise"``.
    """
    import pandas as pd

    if isinstance(per_user, pd.DataFrame):
        if metric is None:
            raise ValueError("give metric: the per-user table holds several columns")
        per_user = per_system(per_user, metric, systems=systems)
    elif systems is not None:
        per_user = {s: per_user[s] for s in systems}
    if reference not in per_user:
        raise KeyError(f"reference {reference!r} is not among the systems {list(per_user)}")
    others = [s for s in per_user if s != reference]
    if not others:
        raise ValueError("nothing to compare: give at least one system besides the reference")
    rows = {s: paired_difference(per_user[s], per_user[reference], n_resamples=n_resamples, seed=seed, alpha=alpha)
            for s in others}
    table = pd.DataFrame({s: {"mean": r["mean_a"], "diff": r["diff"], "low": r["low"], "high": r["high"],
                              "p": r["p"], "n": r["n"]} for s, r in rows.items()}).T
    table["n"] = table["n"].astype(int)
    table["p_holm"] = holm(table["p"].to_numpy())
    table["verdict"] = [verdict(row.low, row.high, row.p_holm, alpha, higher_is_better) for row in table.itertuples()]
    table.index.name = f"vs {reference}"
    return table


def verdict(low: float, high: float, p: float, alpha: float = 0.05, higher_is_better: bool = True) -> str:
    """``"better"``, ``"worse"`` or ``"within noise"`` for a difference's interval and (adjusted) p-value."""
    if p >= alpha or low <= 0.0 <= high:
        return WITHIN_NOISE
    return "better" if (low > 0) == higher_is_better else "worse"


def format_difference(row: Mapping[str, Any], digits: int = 4) -> str:
    """``"+0.0123 [+0.0040, +0.0210]"``: a difference with its paired interval, signed."""
    return f"{row['diff']:+.{digits}f} [{row['low']:+.{digits}f}, {row['high']:+.{digits}f}]"
