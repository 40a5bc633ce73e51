"""Synthetic two-domain interactions with the skew of real logs, to measure how time and memory grow with the data.

Real interaction logs are heavily skewed: a few items take a large share of all interactions
(popularity falls off as a power of the item's rank) and so do a few users (activity falls
off the same way). The generator below draws that shape at any size, as integer codes, with
no Python object per row, so 10 million interactions take a few seconds and a few hundred MB.
It draws no latent taste structure: the data measures cost, not model quality.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DOMAINS = ("A", "B")


@dataclass
class SyntheticData:
    """Interactions as codes: row r is user ``u[r]`` with item ``i[r]``; item j is in domain ``DOMAINS[item_domain[j]]``."""

    u: np.ndarray  # int32 user codes, 0..n_users-1 (every user has at least one interaction)
    i: np.ndarray  # int32 item codes, 0..n_items-1
    item_domain: np.ndarray  # int8 domain code of every item
    n_users: int
    n_items: int
    seed: int

    def __len__(self) -> int:
        return int(self.u.size)

    @property
    def domain(self) -> np.ndarray:
        """int8 domain code of every interaction (its item's domain)."""
        return self.item_domain[self.i]

    def write_parquet(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``interactions.parquet`` (user, item, domain) and ``items.parquet`` (item, domain, title) with string ids.

        Ids are ``u<code>`` and ``i<code>``, built by Arrow compute: no Python string per row.
        Each file is written to a temporary name and renamed into place.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)

        def ids(prefix: str, codes: np.ndarray) -> pa.Array:
            return pc.binary_join_element_wise(prefix, pc.cast(pa.array(codes), pa.string()), "")

        names = pa.array(list(DOMAINS), pa.string())
        inter = pa.table({
            "user": ids("u", self.u),
            "item": ids("i", self.i),
            "domain": pa.DictionaryArray.from_arrays(pa.array(self.domain), names),
        })
        all_items = np.arange(self.n_items, dtype=np.int32)
        items = pa.table({
            "item": ids("i", all_items),
            "domain": pa.DictionaryArray.from_arrays(pa.array(self.item_domain), names),
            "title": ids("item ", all_items),
        })
        paths = directory / "interactions.parquet", directory / "items.parquet"
        for table, path in zip((inter, items), paths):
            tmp = path.with_name(path.name + ".tmp")
            pq.write_table(table, tmp)
            tmp.replace(path)
        return paths


def _power_law(n: int, exponent: float, rng: np.random.Generator, cap: float | None = None) -> np.ndarray:
    """Probabilities proportional to rank^-exponent, assigned to 0..n-1 in a random order, at most ``cap`` each."""
    p = np.arange(1, n + 1, dtype=np.float64) ** -float(exponent)
    p /= p.sum()
    if cap is not None and p[0] > cap:  # pour the excess over the cap into the rest, keeping the shape below it
        for _ in range(50):
            over = p > cap
            if not over.any():
                break
            excess = (p[over] - cap).sum()
            p[over] = cap
            p[~over] += excess * p[~over] / p[~over].sum()
    return p[rng.permutation(n)]


def _distinct_pairs(rng: np.random.Generator, n: int, n_items: int, activity: np.ndarray, lean: np.ndarray,
                    pools: list[np.ndarray], popularity: list[np.ndarray]) -> np.ndarray:
    """At least ``n`` distinct pair codes ``user * n_items + item``, drawn again where pairs repeat (sorted)."""
    codes = np.zeros(0, dtype=np.int64)
    need = n
    for _ in range(100):
        m = int(need * 1.2) + 1000
        users = rng.choice(len(activity), size=m, p=activity).astype(np.int64)
        in_b = rng.random(m) >= lean[users]
        items = np.empty(m, dtype=np.int64)
        for d, pool in enumerate(pools):
            at = np.flatnonzero(in_b == bool(d))
            items[at] = pool[rng.choice(len(pool), size=at.size, p=popularity[d])]
        codes = np.unique(np.concatenate([codes, users * n_items + items]))
        need = n - codes.size
        if need <= 0:
            return codes
    raise RuntimeError(f"could not draw {n} distinct pairs; lower the exponents or raise n_users/n_items")  # pragma: no cover


def synthetic_two_domain(
    n_interactions: int,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    item_exponent: float = 1.0,
    user_exponent: float = 1.0,
    share_a: float = 0.6,
    max_user_share: float = 0.01,
    seed: int = 0,
) -> SyntheticData:
    """``n_interactions`` distinct (user, item) pairs over two domains, skewed like real logs.

    Defaults: ``n_users = n_interactions // 10`` and ``n_items = n_interactions // 20`` (so
    10^7 interactions have 1M users and 500k items). A share ``share_a`` of the items is in
    domain A, the rest in B. Users are drawn with probability proportional to rank^-``user_exponent``
    (no user expected above 100 interactions or ``max_user_share`` of the smaller domain's
    catalogue, whichever is more), each user leans towards one
    domain (a Beta(2, 2) share around ``share_a``), and items within a domain are drawn with
    probability proportional to rank^-``item_exponent``. Repeated pairs are drawn again until
    ``n_interactions`` distinct pairs exist; rows come in random order. Seeded: the same
    arguments give the same data.
    """
    n = int(n_interactions)
    if n < 100:
        raise ValueError(f"n_interactions must be at least 100, got {n_interactions}")
    n_users = int(n_users) if n_users is not None else max(10, n // 10)
    n_items = int(n_items) if n_items is not None else max(20, n // 20)
    if not 0 < share_a < 1:
        raise ValueError(f"share_a must be in (0, 1), got {share_a}")
    if n > n_users * n_items // 4:
        raise ValueError(f"{n} interactions are too dense for {n_users} users x {n_items} items (at most a quarter)")
    rng = np.random.default_rng(seed)
    n_a = int(round(n_items * share_a))
    item_domain = np.zeros(n_items, dtype=np.int8)
    item_domain[rng.permutation(n_items)[n_a:]] = 1
    pools = [np.flatnonzero(item_domain == d).astype(np.int32) for d in (0, 1)]
    popularity = [_power_law(len(pool), item_exponent, rng) for pool in pools]
    most = max(100.0, max_user_share * min(len(pool) for pool in pools))  # interactions of the most active user
    activity = _power_law(n_users, user_exponent, rng, cap=most / n)
    lean = rng.beta(2 * share_a / 0.5, 2 * (1 - share_a) / 0.5, size=n_users)  # mean share_a

    codes = _distinct_pairs(rng, n, n_items, activity, lean, pools, popularity)
    codes = codes[rng.choice(codes.size, size=n, replace=False)]  # exactly n, in random order
    u = (codes // n_items).astype(np.int32)
    # renumber users so that every code 0..n_users-1 has an interaction (users never drawn are dropped)
    present, u = np.unique(u, return_inverse=True)
    return SyntheticData(u=u.astype(np.int32), i=(codes % n_items).astype(np.int32), item_domain=item_domain,
                         n_users=int(present.size), n_items=n_items, seed=int(seed))


__all__ = ["DOMAINS", "SyntheticData", "synthetic_two_domain"]
