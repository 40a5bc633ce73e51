"""Evaluation: full ranking against hand-computed metrics, exclusion, popularity, rating errors against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, precision_recall_fscore_support

from cdtl.data.ids import interaction_matrix
from cdtl.evaluate import evaluate_ranking, evaluate_ratings, group_items, popularity_scores, report, slice_users

# users are 1, 4 and 7 of 8; items 0..5
SCORES = torch.zeros(8, 6)
SCORES[1] = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
SCORES[4] = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
SCORES[7] = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
USERS = np.array([1, 4, 7])
RELEVANT = [np.array([2, 5]), np.array([3]), np.array([0])]
TRAIN = interaction_matrix(np.array([1, 4, 4]), np.array([0, 5, 4]), 8, 6)  # user 1 saw item 0; user 4 items 4, 5


def _score_all(users: torch.Tensor) -> torch.Tensor:
    return SCORES[users]


def test_evaluate_ranking_matches_hand_computed_metrics():
    calls = []

    def score_all(users):
        calls.append(users.tolist())
        return _score_all(users)

    out = evaluate_ranking(score_all, USERS, RELEVANT, TRAIN, ks=(1, 3), batch_size=2)
    assert calls == [[1, 4], [7]]  # batched, in order, by user index
    d = 1 / math.log2(3)
    # user 1 ranks 1, 2, 3, 4, 5 (0 excluded): item 2 at rank 2 of relevant {2, 5}
    # user 4 ranks 3, 2, 1, 0 (4, 5 excluded): item 3 at rank 1
    # user 7 ranks 5, 4, 3, 2, 1, 0: item 0 is last
    np.testing.assert_allclose(out["recall@3"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(out["ndcg@3"], [d / (1 + d), 1.0, 0.0])
    np.testing.assert_allclose(out["hit@1"], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(out["mrr@3"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(out["precision@3"], [1 / 3, 1 / 3, 0.0])
    assert set(out) == {f"{m}@{k}" for m in ("recall", "ndcg", "hit", "mrr", "precision") for k in (1, 3)}


def test_evaluate_ranking_exclusion_is_honoured():
    without = evaluate_ranking(_score_all, USERS, RELEVANT, None, ks=(3,))
    # unmasked, user 1's top 3 is 0, 1, 2 (item 2 at rank 3) and user 4's is 5, 4, 3 (item 3 at rank 3)
    np.testing.assert_allclose(without["mrr@3"], [1 / 3, 1 / 3, 0.0])
    # a training item that is also held out can never be recommended
    relevant = [np.array([0]), np.array([5]), np.array([5])]
    masked = evaluate_ranking(_score_all, USERS, relevant, TRAIN, ks=(4,))  # user 4 has 4 items left
    np.testing.assert_allclose(masked["hit@4"], [0.0, 0.0, 1.0])


def test_popularity_ranking():
    train_users = np.array([0, 0, 1, 2, 2, 3, 3])
    train_items = np.array([0, 1, 0, 0, 2, 1, 3])
    pop = popularity_scores(train_items, n_items=5)
    torch.testing.assert_close(pop, torch.tensor([3.0, 2.0, 1.0, 1.0, 0.0]))
    csr = interaction_matrix(train_users, train_items, 4, 5)
    users, relevant = group_items(np.array([0, 1, 2, 3, 1]), np.array([2, 1, 1, 0, 4]))
    assert users.tolist() == [0, 1, 2, 3]
    assert [r.tolist() for r in relevant] == [[2], [1, 4], [1], [0]]
    out = evaluate_ranking(lambda u: pop.expand(len(u), -1), users, relevant, csr, ks=(1,))
    # the most popular item each user has not trained on: 2 (or tied 3), 1, 1, 0
    assert out["hit@1"][1:].tolist() == [1.0, 1.0, 1.0]
    assert out["recall@1"][1] == 0.5


def test_evaluate_ranking_rejects_bad_input():
    with pytest.raises(ValueError, match="no relevant items, e.g. user indices \\[4\\]"):
        evaluate_ranking(_score_all, USERS, [np.array([1]), np.array([], dtype=np.int64), np.array([0])], TRAIN)
    with pytest.raises(ValueError, match="relevant has 2 entries but users has 3"):
        evaluate_ranking(_score_all, USERS, RELEVANT[:2], TRAIN)
    with pytest.raises(TypeError, match="integer user indices"):
        evaluate_ranking(_score_all, np.array(["1", "4", "7"]), RELEVANT, TRAIN)
    with pytest.raises(ValueError, match="row indices of exclude_csr"):
        evaluate_ranking(_score_all, np.array([1, 4, 9]), RELEVANT, TRAIN)


@pytest.mark.slow
def test_full_ranking_at_movielens_1m_size_covers_every_user():
    """Full ranking at MovieLens 1M's size gives every user a value (its speed: benchmarks/bench_mf.py)."""
    gen = torch.Generator().manual_seed(0)
    n_users, n_items = 6040, 3706
    users_emb, items_emb = torch.randn(n_users, 64, generator=gen), torch.randn(n_items, 64, generator=gen)
    rng = np.random.default_rng(0)
    train = interaction_matrix(rng.integers(0, n_users, 800_000), rng.integers(0, n_items, 800_000), n_users, n_items)
    users = np.arange(n_users)
    relevant = [rng.integers(0, n_items, 10) for _ in users]
    out = evaluate_ranking(lambda u: users_emb[u] @ items_emb.T, users, relevant, train, ks=(10, 20))
    assert out["ndcg@10"].shape == (n_users,) and np.isfinite(out["ndcg@10"]).all()
    assert ((out["ndcg@10"] >= 0) & (out["ndcg@10"] <= 1)).all()


# --------------------------------------------------------------------------- ratings


def test_evaluate_ratings_matches_sklearn_and_per_user_means():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 20, 500)
    items = rng.integers(0, 30, 500)
    ratings = rng.integers(1, 6, 500).astype(np.float32)
    table = torch.from_numpy(rng.uniform(1, 5, (20, 30)).astype(np.float32))
    out = evaluate_ratings(lambda u, i: table[u, i], users, items, ratings, threshold=4.0, batch_size=64)
    pred = table[users, items].numpy().astype(np.float64)
    assert out["mae"] == pytest.approx(mean_absolute_error(ratings, pred))
    assert out["rmse"] == pytest.approx(math.sqrt(mean_squared_error(ratings, pred)))
    p, r, f, _ = precision_recall_fscore_support(ratings >= 4.0, pred >= 4.0, average="binary", zero_division=0)
    assert (out["precision"], out["recall"], out["f1"]) == pytest.approx((p, r, f))
    frame = pd.DataFrame({"user": users, "abs": np.abs(pred - ratings), "sq": (pred - ratings) ** 2})
    means = frame.groupby("user").mean()
    per_user = out["per_user"]
    assert per_user["users"].tolist() == means.index.tolist()
    np.testing.assert_allclose(per_user["abs_error"], means["abs"])
    np.testing.assert_allclose(per_user["sq_error"], means["sq"])
    with pytest.raises(ValueError, match="same length"):
        evaluate_ratings(lambda u, i: table[u, i], users, items[:3], ratings)


# --------------------------------------------------------------------------- slices and reports


def test_slice_users_and_report():
    per_user = {"recall@10": np.array([0.0, 0.5, 1.0, 1.0]), "ndcg@10": np.array([0.0, 0.2, 0.4, 0.6])}
    users = np.array([10, 3, 7, 5])
    warm = slice_users(per_user, users, [5, 3, 99])
    np.testing.assert_allclose(warm["recall@10"], [0.5, 1.0])
    np.testing.assert_allclose(warm["ndcg@10"], [0.2, 0.6])
    with pytest.raises(ValueError, match="slice is empty"):
        slice_users(per_user, users, [1, 2])
    with pytest.raises(ValueError, match="per_user\\['x'\\] has 2 values but users has 4"):
        slice_users({"x": np.zeros(2)}, users, [5])
    summary = report({**per_user, "users": users}, n_resamples=200, seed=0)
    assert set(summary) == {"recall@10", "ndcg@10"}
    assert summary["recall@10"]["mean"] == pytest.approx(0.625) and summary["recall@10"]["n"] == 4
    assert summary["ndcg@10"]["low"] <= 0.3 <= summary["ndcg@10"]["high"]
    assert report(per_user, n_resamples=200, seed=0) == summary


def test_recall_by_item_group_counts_hits_per_group():
    from cdtl.evaluate import recall_by_item_group

    scores = torch.tensor([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    out = recall_by_item_group(lambda u: scores[u], np.array([0, 1]), [np.array([0, 3]), np.array([0, 3])],
                               np.array(["head", "head", "tail", "tail"]), k=1)
    assert out == {"head": {"held_out": 2, "hits": 1, "recall": 0.5}, "tail": {"held_out": 2, "hits": 1, "recall": 0.5}}
    with pytest.raises(ValueError, match="item_group labels 3"):
        recall_by_item_group(lambda u: scores[u], np.array([0]), [np.array([0])], np.array([0, 1, 2]), k=1)
