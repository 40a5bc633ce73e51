"""Top-K retrieval by inner product behind one interface: exact (one matrix product) or FAISS (IVF or HNSW).

A recommender scores an item by an inner product of a query vector (the user) with an
item vector; serving asks for the K items with the largest scores, leaving out the items
a user has already seen. ``ItemIndex`` does that in two ways:

- ``"exact"``: one matrix product with every item and a partial sort. Exact by
  construction, and the reference every approximate index is measured against;
- ``"ivf"`` and ``"hnsw"``: FAISS (``faiss-cpu``) with the inner-product metric. IVF
  clusters the items into ``nlist`` cells and scans the ``nprobe`` cells nearest the
  query; HNSW walks a graph of near neighbours (both on the items lifted so that the
  largest inner product is the nearest neighbour). Both read a fraction of the catalogue,
  so they stay fast at a million items, at the price of sometimes missing an item that
  exact search would return (``recall_at_k`` measures how often).

``kind="auto"`` is exact up to ``exact_max_items`` items and IVF above.

Items added after the index was built (a new item from its text) go into a small exact
*fresh* segment that every search also scans, and the two result lists are merged. The
main index is never modified after it is built, so searches need no lock: an add builds
a new fresh segment and swaps it in with one assignment. Rebuilding the main index
(a new bundle) folds the fresh items in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

KINDS = ("auto", "exact", "ivf", "hnsw")


@dataclass(frozen=True)
class IndexSettings:
    """How to build an ``ItemIndex``; every field has a default that works from a thousand to a million items."""

    kind: str = "auto"  # auto | exact | ivf | hnsw
    exact_max_items: int = 20_000  # "auto" is exact up to this many items
    nlist: int | None = None  # IVF cells; None: about 4 sqrt(n), at most n / 39 (FAISS's k-means wants 39 per cell) and 4096
    nprobe: int = 48  # IVF cells scanned per query (recall@10 0.97 at a million items; 32 gives 0.95)
    train_per_cell: int = 64  # IVF training sample: this many items per cell (at most every item)
    hnsw_m: int = 32  # HNSW neighbours per node
    ef_construction: int = 200  # HNSW build-time search width
    ef_search: int = 128  # HNSW query-time search width
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"index kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("exact_max_items", "nprobe", "train_per_cell", "hnsw_m", "ef_construction", "ef_search"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"index setting {name} must be a positive integer, got {value!r}")
        if self.nlist is not None and (isinstance(self.nlist, bool) or not isinstance(self.nlist, int) or self.nlist < 1):
            raise ValueError(f"index setting nlist must be a positive integer or None, got {self.nlist!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> IndexSettings:
        """Settings from a config mapping; an unknown key raises ValueError listing the valid ones."""
        values = dict(values or {})
        valid = set(asdict(cls()))
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ValueError(f"unknown index setting(s) {unknown}; valid: {sorted(valid)}")
        return cls(**values)

    def resolved_kind(self, n_items: int) -> str:
        """The kind an index of ``n_items`` items gets ("auto" decided by size)."""
        if self.kind != "auto":
            return self.kind
        return "exact" if n_items <= self.exact_max_items else "ivf"

    def resolved_nlist(self, n_items: int) -> int:
        """IVF cells for ``n_items``: the setting, or about 4 sqrt(n) but at most n / 39 and 4096."""
        nlist = self.nlist or min(4096, int(4 * math.sqrt(n_items)), n_items // 39)
        return max(1, min(nlist, n_items))


def _as_matrix(vectors: Any, name: str, dim: int | None = None) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) array, got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"{name} has {array.shape[1]} columns, the index holds {dim}-dimensional vectors")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return array


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, columns) of the k largest entries of each row of ``scores``, best first."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.empty((len(scores), 0), np.float32), np.empty((len(scores), 0), np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.tile(
        np.arange(scores.shape[1]), (len(scores), 1))
    values = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(part, order, axis=1).astype(np.int64)


class _Exact:
    """Every item scored by one matrix product."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int, exclude: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if len(queries) == 1 and k < len(self.vectors):  # the service's case: one query, few numpy calls
            scores = self.vectors @ queries[0]
            if len(exclude[0]):
                scores[exclude[0]] = -np.inf
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            values = scores[top]
            return values[None], np.where(np.isneginf(values), -1, top).astype(np.int64)[None]
        scores = queries @ self.vectors.T
        for row, rows in enumerate(exclude):
            if len(rows):
                scores[row, rows] = -np.inf
        values, rows = _top_k(scores, k)
        rows[np.isneginf(values)] = -1  # an excluded item is no answer
        if values.shape[1] < k:  # fewer items than k: pad
            pad = k - values.shape[1]
            values = np.pad(values, ((0, 0), (0, pad)), constant_values=-np.inf)
            rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=-1)
        return values, rows


class _Faiss:
    """A FAISS index over the items, searched for the largest inner products; excluded rows are over-fetched and dropped.

    Inner-product search is reduced to nearest-neighbour search (Bachrach et al., 2014):
    each item gets one more coordinate, ``sqrt(M^2 - |x|^2)`` with M the largest item norm,
    so all items have norm M and ``|q' - x'|^2 = |q|^2 + M^2 - 2 q.x`` for the query
    ``q' = [q, 0]``: the nearest items are those with the largest inner product. Graphs and
    clusters built on Euclidean distance then behave as they do on normalised vectors.
    """

    def __init__(self, vectors: np.ndarray, kind: str, settings: IndexSettings) -> None:
        import faiss

        n, d = vectors.shape
        self.kind, self.settings, self.n = kind, settings, n
        norms = (vectors.astype(np.float64) ** 2).sum(1)
        self.max_norm2 = float(norms.max())
        extra = np.sqrt(np.maximum(self.max_norm2 - norms, 0.0)).astype(np.float32)[:, None]
        lifted = np.ascontiguousarray(np.hstack([vectors, extra]))
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(d + 1, settings.hnsw_m)
            index.hnsw.efConstruction = settings.ef_construction
            index.hnsw.efSearch = settings.ef_search
        else:
            nlist = settings.resolved_nlist(n)
            index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d + 1), d + 1, nlist)
            index.cp.seed = settings.seed
            sample = min(n, nlist * settings.train_per_cell)
            rng = np.random.default_rng(settings.seed)
            index.train(lifted if sample >= n else lifted[np.sort(rng.choice(n, sample, replace=False))])
            index.nprobe = min(settings.nprobe, nlist)
        index.add(lifted)
        self.index = index

    def __len__(self) -> int:
        return self.n

    def search(self, queries: np.ndarray, k: int, exclude: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        lifted = np.ascontiguousarray(np.hstack([queries, np.zeros((len(queries), 1), np.float32)]))
        q_norm2 = (queries.astype(np.float64) ** 2).sum(1)
        out_values = np.full((len(queries), k), -np.inf, np.float32)
        out_rows = np.full((len(queries), k), -1, np.int64)
        extra = max((len(e) for e in exclude), default=0)
        want = min(self.n, k + extra)
        while True:  # at most a few rounds: each doubles the fetch until k items survive the filter
            distances, rows = self.index.search(lifted, want)
            values = ((q_norm2[:, None] + self.max_norm2 - distances) / 2).astype(np.float32)
            short = False
            for q in range(len(queries)):
                keep = rows[q] >= 0
                if len(exclude[q]):
                    keep &= ~np.isin(rows[q], exclude[q])
                got_v, got_r = values[q][keep][:k], rows[q][keep][:k]
                order = np.argsort(-got_v, kind="stable")
                out_values[q, :len(got_v)], out_rows[q, :len(got_r)] = got_v[order], got_r[order]
                short |= len(got_r) < min(k, self.n - len(exclude[q])) and want < self.n
            if not short:
                return out_values, out_rows
            want = min(self.n, want * 2)


class ItemIndex:
    """The K items with the largest inner product with a query, excluding given rows (see the module docstring).

    ``ItemIndex(vectors, settings)`` indexes the rows of ``vectors`` (n, d) as items 0..n-1;
    ``add(more)`` appends items n.. to the fresh segment; ``search(queries, k, exclude)``
    returns ``(scores, rows)``, each (len(queries), k), best first (row -1 and score -inf
    where fewer than k items remain).
    """

    def __init__(self, vectors: Any, settings: IndexSettings | None = None) -> None:
        self.settings = settings or IndexSettings()
        main = _as_matrix(vectors, "vectors")
        if len(main) == 0:
            raise ValueError("an index needs at least one item")
        self.dim = main.shape[1]
        self.kind = self.settings.resolved_kind(len(main))
        self._main = _Exact(main) if self.kind == "exact" else _Faiss(main, self.kind, self.settings)
        self._fresh = np.empty((0, self.dim), np.float32)

    def __len__(self) -> int:
        return len(self._main) + len(self._fresh)

    def __repr__(self) -> str:
        return f"ItemIndex({self.kind}, {len(self)} items ({len(self._fresh)} fresh), dim {self.dim})"

    @property
    def n_fresh(self) -> int:
        """Items added since the main index was built."""
        return len(self._fresh)

    def add(self, vectors: Any) -> np.ndarray:
        """Append items to the fresh segment; returns their rows. Safe while other threads search."""
        new = _as_matrix(vectors, "vectors", self.dim)
        first = len(self)
        self._fresh = np.concatenate([self._fresh, new])  # a new array, swapped in whole
        return np.arange(first, first + len(new), dtype=np.int64)

    def search(self, queries: Any, k: int, exclude: list[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the top ``k`` items for each query row, best first; ``exclude[q]``: rows to leave out."""
        queries = _as_matrix(np.atleast_2d(queries), "queries", self.dim)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = int(k)
        fresh, n_main = self._fresh, len(self._main)  # one read: an add() during the search does not tear it
        if exclude is None:
            exclude = [np.empty(0, np.int64)] * len(queries)
        if len(exclude) != len(queries):
            raise ValueError(f"exclude needs one entry per query: {len(exclude)} for {len(queries)} queries")
        exclude = [np.asarray(e, dtype=np.int64).ravel() for e in exclude]
        main_excl = [e[e < n_main] for e in exclude]
        values, rows = self._main.search(queries, k, main_excl)
        if len(fresh) == 0:
            return values, rows
        f_values, f_rows = _Exact(fresh).search(queries, k, [e[e >= n_main] - n_main for e in exclude])
        values = np.concatenate([values, f_values], axis=1)
        rows = np.concatenate([rows, np.where(f_rows >= 0, f_rows + n_main, -1)], axis=1)
        order = np.argsort(-values, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(values, order, axis=1), np.take_along_axis(rows, order, axis=1)


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int | None = None) -> float:
    """Mean share of each row's true top-k (``truth``) that ``found`` also returned (rows of item ids)."""
    found, truth = np.atleast_2d(found), np.atleast_2d(truth)
    if found.shape[0] != truth.shape[0]:
        raise ValueError(f"found and truth need one row per query, got {found.shape[0]} and {truth.shape[0]}")
    k = k or truth.shape[1]
    hits = [len(np.intersect1d(f[:k][f[:k] >= 0], t[:k][t[:k] >= 0])) / max(1, int((t[:k] >= 0).sum()))
            for f, t in zip(found, truth)]
    return float(np.mean(hits))


def synthetic_catalogue(reference: Any, n_items: int, *, noise: float = 0.5, seed: int = 0) -> np.ndarray:
    """``n_items`` vectors shaped like ``reference`` rows: a random real row plus Gaussian noise.

    The noise has, per dimension, ``noise`` times the reference's standard deviation, so a
    synthetic catalogue keeps the real one's clusters and scales (uniform random vectors
    would make approximate search look worse than it is on real embeddings).
    """
    reference = _as_matrix(reference, "reference")
    rng = np.random.default_rng(seed)
    out = np.empty((n_items, reference.shape[1]), np.float32)
    scale = (reference.std(0) * noise).astype(np.float32)
    for start in range(0, n_items, 100_000):  # in blocks: a million rows never need two copies in memory
        stop = min(n_items, start + 100_000)
        rows = rng.integers(0, len(reference), stop - start)
        out[start:stop] = reference[rows] + rng.standard_normal((stop - start, reference.shape[1]), np.float32) * scale
    return out


__all__ = ["KINDS", "IndexSettings", "ItemIndex", "recall_at_k", "synthetic_catalogue"]
