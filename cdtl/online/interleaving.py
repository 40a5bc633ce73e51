"""Team-draft interleaving: both rankers serve every user in one mixed list, and clicks say which one the user preferred.

Radlinski, Kurup and Joachims (CIKM 2008). Two teams pick players: the team with fewer
picks so far (a coin decides ties) adds its best-ranked item not yet in the list, until
the list has k items. Each item remembers the team that placed it; a click credits that
team. Per user, the ranker with more credited clicks wins; equal credit is a tie.

Because every user compares both rankers, the user-to-user variation that an A/B test
has to average away (some users click a lot, some never) cancels out, and a difference
shows with far fewer users. ``detection_rates`` measures how many fewer, by repeatedly
drawing n users and running both experiments on them.

Clicks here are simulated from held-out interactions: a user clicks every shown item
that is among their held-out items (a deterministic click model; real clicks are noisier,
which costs both methods users).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def team_draft(ranking_a: Any, ranking_b: Any, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(items, teams) of a team-draft interleaving of two rankings, ``k`` items long; team 0 is A, 1 is B."""
    a, b = [int(x) for x in ranking_a], [int(x) for x in ranking_b]
    items: list[int] = []
    teams: list[int] = []
    taken: set[int] = set()
    picks = [0, 0]
    pos = [0, 0]
    lists = (a, b)
    while len(items) < k:
        if pos[0] >= len(a) and pos[1] >= len(b):
            break
        team = int(rng.random() < 0.5) if picks[0] == picks[1] else int(picks[1] < picks[0])
        if pos[team] >= len(lists[team]):
            team = 1 - team
        ranking = lists[team]
        while pos[team] < len(ranking) and ranking[pos[team]] in taken:
            pos[team] += 1
        if pos[team] >= len(ranking):
            continue
        item = ranking[pos[team]]
        items.append(item)
        teams.append(team)
        taken.add(item)
        picks[team] += 1
    return np.asarray(items, dtype=np.int64), np.asarray(teams, dtype=np.int64)


def preferences(rankings_a: np.ndarray, rankings_b: np.ndarray, relevant: list[np.ndarray], *, k: int = 10,
                seed: int = 0) -> np.ndarray:
    """(n_users,) +1 where B won the user's clicks, -1 where A did, 0 for a tie (no click, or equal credit)."""
    if len(rankings_a) != len(rankings_b) or len(rankings_a) != len(relevant):
        raise ValueError(f"one ranking of each system and one set of relevant items per user, got "
                         f"{len(rankings_a)}, {len(rankings_b)}, {len(relevant)}")
    rng = np.random.default_rng(seed)
    out = np.zeros(len(relevant), dtype=np.int64)
    for u, (ra, rb, rel) in enumerate(zip(rankings_a, rankings_b, relevant)):
        items, teams = team_draft(ra, rb, k, rng)
        clicked = np.isin(items, rel)
        credit_b, credit_a = int((clicked & (teams == 1)).sum()), int((clicked & (teams == 0)).sum())
        out[u] = np.sign(credit_b - credit_a)
    return out


def sign_test(prefs: Any) -> dict[str, float]:
    """Two-sided binomial test that B and A win equally often among the users who preferred one of them."""
    prefs = np.asarray(prefs)
    wins_b, wins_a = int((prefs > 0).sum()), int((prefs < 0).sum())
    n = wins_a + wins_b
    p = float(stats.binomtest(wins_b, n, 0.5).pvalue) if n else 1.0
    return {"wins_b": wins_b, "wins_a": wins_a, "ties": int((prefs == 0).sum()),
            "share_b": wins_b / n if n else float("nan"), "p_value": p}


def _binom_two_sided(wins: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Vectorised two-sided binomial p-values at 1/2 (the tails of the symmetric distribution, doubled)."""
    low = np.minimum(wins, n - wins)
    return np.where(n > 0, np.minimum(1.0, 2 * stats.binom.cdf(low, np.maximum(n, 1), 0.5)), 1.0)


def detection_rates(hits_a: Any, hits_b: Any, prefs: Any, sizes: list[int], *, draws: int = 200, alpha: float = 0.05,
                    power: float | None = None, seed: int = 0) -> pd.DataFrame:
    """How often each method detects that B beats A with n users, for each n in ``sizes``, over ``draws`` draws.

    Each draw takes n users (with replacement) from the pool. The A/B test splits them
    at random into two arms, A's users observed by ``hits_a`` and B's by ``hits_b`` (0/1
    per user), and runs the two-proportion z test; interleaving shows all n users both
    rankers and runs ``sign_test`` on their ``prefs``. A detection is p < alpha with the
    difference in B's favour. With ``power``, sizes stop once both methods reach it.
    Draws are processed in blocks, so memory stays bounded however large n is.
    """
    hits_a, hits_b, prefs = (np.asarray(x, dtype=np.float64) for x in (hits_a, hits_b, prefs))
    if not len(hits_a) == len(hits_b) == len(prefs):
        raise ValueError("hits_a, hits_b and prefs need one value per user of the same pool")
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        ab_hits, inter_hits = 0, 0
        block = max(1, min(draws, 2_000_000 // max(n, 1)))
        for start in range(0, draws, block):
            m = min(block, draws - start)
            users = rng.integers(0, len(prefs), (m, n))
            arm_b = rng.random((m, n)) < 0.5
            n_b = arm_b.sum(1)
            n_a = n - n_b
            s_b, s_a = (hits_b[users] * arm_b).sum(1), (hits_a[users] * ~arm_b).sum(1)
            pooled = (s_a + s_b) / n
            se = np.sqrt(pooled * (1 - pooled) * (1 / np.maximum(n_a, 1) + 1 / np.maximum(n_b, 1)))
            diff = s_b / np.maximum(n_b, 1) - s_a / np.maximum(n_a, 1)
            z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), 0.0)
            ab_hits += int(((2 * stats.norm.sf(np.abs(z)) < alpha) & (diff > 0) & (n_a > 0) & (n_b > 0)).sum())
            p = prefs[users]
            wins_b, wins_a = (p > 0).sum(1), (p < 0).sum(1)
            inter_hits += int(((_binom_two_sided(wins_b, wins_a + wins_b) < alpha) & (wins_b > wins_a)).sum())
        rows.append({"users": n, "ab_power": ab_hits / draws, "interleaving_power": inter_hits / draws})
        if power is not None and rows[-1]["ab_power"] >= power and rows[-1]["interleaving_power"] >= power:
            break
    return pd.DataFrame(rows)


def users_for_power(rates: pd.DataFrame, column: str, power: float = 0.8) -> float | None:
    """The smallest number of users whose detection rate reaches ``power`` (linear between grid points); None if never."""
    users, values = rates["users"].to_numpy(float), rates[column].to_numpy(float)
    above = np.flatnonzero(values >= power)
    if len(above) == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(users[0])
    x0, x1, y0, y1 = users[i - 1], users[i], values[i - 1], values[i]
    return float(x0 + (power - y0) * (x1 - x0) / (y1 - y0))


__all__ = ["detection_rates", "preferences", "sign_test", "team_draft", "users_for_power"]
