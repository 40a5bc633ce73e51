"""The item index: exact search is the truth, FAISS comes close to it, and added items are found at once."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cdtl.serve.index import IndexSettings, ItemIndex, recall_at_k, synthetic_catalogue


def clustered(n: int, d: int = 32, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    return centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, d)).astype(np.float32)


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int, exclude=None) -> np.ndarray:
    scores = queries @ vectors.T
    if exclude is not None:
        for q, rows in enumerate(exclude):
            scores[q, rows] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_exact_search_is_the_brute_force_top_k_best_first_without_excluded_rows():
    vectors = clustered(500)
    queries = clustered(20, seed=1)
    exclude = [np.arange(q, q + 30) for q in range(20)]
    index = ItemIndex(vectors, IndexSettings(kind="exact"))
    values, rows = index.search(queries, 10, exclude)
    assert np.array_equal(rows, brute_force(vectors, queries, 10, exclude))
    assert (np.diff(values, axis=1) <= 0).all()
    assert all(not np.isin(r, e).any() for r, e in zip(rows, exclude))
    np.testing.assert_allclose(values, np.take_along_axis(queries @ vectors.T, rows, 1), rtol=1e-5)


def test_fewer_items_than_k_are_padded_with_minus_one():
    index = ItemIndex(np.eye(4, dtype=np.float32), IndexSettings(kind="exact"))
    values, rows = index.search(np.ones((1, 4)), 10, [np.array([0, 1])])
    assert sorted(rows[0][:2].tolist()) == [2, 3] and (rows[0][2:] == -1).all() and np.isinf(values[0][2:]).all()


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_faiss_recall_against_exact_search(kind):
    vectors = clustered(5000)
    queries = clustered(200, seed=2)
    exclude = [np.arange(q * 5, q * 5 + 20) for q in range(len(queries))]
    exact = ItemIndex(vectors, IndexSettings(kind="exact")).search(queries, 10, exclude)[1]
    approx_index = ItemIndex(vectors, IndexSettings(kind=kind))
    assert approx_index.kind == kind
    approx = approx_index.search(queries, 10, exclude)[1]
    assert all(not np.isin(r, e).any() for r, e in zip(approx, exclude))
    assert recall_at_k(approx, exact, 10) >= 0.95


def test_added_items_are_searched_and_can_be_excluded():
    vectors = clustered(300)
    for kind in ("exact", "ivf"):
        index = ItemIndex(vectors, IndexSettings(kind=kind, nlist=8))
        probe = np.full((1, vectors.shape[1]), 50.0, np.float32)  # far larger than any item: it must come first
        rows = index.add(probe)
        assert rows.tolist() == [300] and len(index) == 301 and index.n_fresh == 1
        assert index.search(probe, 3)[1][0][0] == 300
        assert 300 not in index.search(probe, 3, [np.array([300])])[1][0]


def test_search_while_items_are_added_never_fails():
    vectors = clustered(2000)
    index = ItemIndex(vectors, IndexSettings(kind="exact"))
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        rng = np.random.default_rng(0)
        for _ in range(300):  # bounded
            if stop.is_set():
                return
            try:
                _, rows = index.search(rng.standard_normal((1, 32)).astype(np.float32), 5)
                assert (rows >= 0).all() and (rows < len(vectors) + 200).all()
            except BaseException as err:  # collected and asserted below
                errors.append(err)
                return

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for j in range(200):
        index.add(clustered(1, seed=100 + j))
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors and len(index) == 2200


def test_auto_is_exact_for_small_catalogues_and_ivf_for_large_ones():
    settings = IndexSettings(exact_max_items=100)
    assert settings.resolved_kind(100) == "exact" and settings.resolved_kind(101) == "ivf"
    assert ItemIndex(clustered(150), IndexSettings(exact_max_items=100, nlist=4)).kind == "ivf"
    assert settings.resolved_nlist(1_000_000) == 4000 and settings.resolved_nlist(5000) == 128
    assert settings.resolved_nlist(10) == 1


@pytest.mark.parametrize("bad, message", [({"kind": "annoy"}, "kind"), ({"nprobe": 0}, "nprobe"),
                                          ({"colour": 1}, "unknown index setting")])
def test_bad_settings_name_the_setting(bad, message):
    with pytest.raises(ValueError, match=message):
        IndexSettings.from_dict(bad)


def test_bad_vectors_and_queries_are_refused():
    index = ItemIndex(clustered(10), IndexSettings(kind="exact"))
    with pytest.raises(ValueError, match="columns"):
        index.search(np.ones((1, 3)), 2)
    with pytest.raises(ValueError, match="k must be"):
        index.search(np.ones((1, 32)), 0)
    with pytest.raises(ValueError, match="NaN"):
        ItemIndex(np.full((3, 2), np.nan))


def test_recall_and_synthetic_catalogue():
    assert recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 2, 9]])) == pytest.approx(2 / 3)
    reference = clustered(100)
    a, b = synthetic_catalogue(reference, 1000, seed=1), synthetic_catalogue(reference, 1000, seed=1)
    assert a.shape == (1000, 32) and np.array_equal(a, b)
    assert np.allclose(a.std(0), reference.std(0), rtol=0.35)
