"""Metrics: hand-computed cases, agreement with scikit-learn, and bad-input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.metrics import (
    mean_absolute_error,
    mean_squared_error,
    ndcg_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from cdtl import metrics
from cdtl.metrics import (
    auc_per_user,
    bootstrap_ci,
    like_prf,
    mae,
    ranking_metrics,
    rmse,
    summarize,
    topk_from_scores,
)

# --------------------------------------------------------------------------- rating metrics


def test_mae_rmse_by_hand():
    pred, true = [3.0, 4.0, 5.0, 1.0], [4.0, 4.0, 3.0, 1.0]
    assert mae(pred, true) == pytest.approx((1 + 0 + 2 + 0) / 4)
    assert rmse(pred, true) == pytest.approx(math.sqrt((1 + 0 + 4 + 0) / 4))


def test_rating_metrics_accept_tensors_and_match_sklearn():
    rng = np.random.default_rng(0)
    true = rng.integers(1, 6, size=500).astype(float)
    pred = np.clip(true + rng.normal(0, 0.8, size=500), 1, 5)
    assert mae(torch.tensor(pred), torch.tensor(true)) == pytest.approx(mean_absolute_error(true, pred))
    assert rmse(pred, true) == pytest.approx(math.sqrt(mean_squared_error(true, pred)))


def test_like_prf_by_hand():
    # likes (>= 4): true  [T, T, F, F, T]
    #               pred  [T, F, T, F, T]  -> tp=2, fp=1, fn=1
    pred = [4.5, 3.9, 4.0, 2.0, 5.0]
    true = [4.0, 5.0, 3.0, 1.0, 4.0]
    out = like_prf(pred, true)
    assert out == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    # a stricter threshold changes what counts as a like: true [F,T,F,F,F], pred [F,F,F,F,T]
    assert like_prf(pred, true, threshold=5.0) == pytest.approx({"precision": 0.0, "recall": 0.0, "f1": 0.0})


def test_like_prf_matches_sklearn():
    rng = np.random.default_rng(1)
    true = rng.integers(1, 6, size=400).astype(float)
    pred = np.clip(true + rng.normal(0, 1.0, size=400), 1, 5)
    p, r, f, _ = precision_recall_fscore_support(true >= 3.5, pred >= 3.5, average="binary")
    out = like_prf(pred, true, threshold=3.5)
    assert 0 < out["precision"] < 1
    assert out == pytest.approx({"precision": p, "recall": r, "f1": f})


@pytest.mark.parametrize("fn", [mae, rmse, like_prf])
def test_rating_metrics_reject_bad_input(fn):
    with pytest.raises(ValueError, match="differ in length: 2 vs 3"):
        fn([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="empty"):
        fn([], [])
    with pytest.raises(ValueError, match="NaN"):
        fn([1.0, float("nan")], [1.0, 2.0])


# --------------------------------------------------------------------------- top-k with exclusion


def test_exclusion_changes_topk():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.5, 0.3], [0.1, 0.2, 0.3, 0.4, 0.5]])
    assert topk_from_scores(scores, 2).tolist() == [[0, 1], [4, 3]]
    exclude = [torch.tensor([0, 1]), torch.tensor([4])]
    assert topk_from_scores(scores, 2, exclude).tolist() == [[3, 4], [3, 2]]
    # the caller's scores are left untouched
    assert torch.isfinite(scores).all()


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta:UserWarning")
def test_exclusion_forms_agree_and_match_brute_force():
    rng = np.random.default_rng(2)
    n_users, n_items, k = 40, 60, 7
    scores = torch.from_numpy(rng.random((n_users, n_items), dtype=np.float32))
    train = [rng.choice(n_items, size=rng.integers(0, 20), replace=False) for _ in range(n_users)]

    rows = np.repeat(np.arange(n_users), [len(t) for t in train])
    cols = np.concatenate(train)
    csr = scipy.sparse.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(n_users, n_items))
    forms = {
        "arrays": train,
        "sets": [set(t.tolist()) for t in train],
        "tensors": [torch.from_numpy(t) for t in train],
        "scipy csr": csr,
        "torch csr": torch.from_numpy(csr.toarray()).to_sparse_csr(),
    }
    expected = []
    for u in range(n_users):
        order = [i for i in np.argsort(-scores[u].numpy(), kind="stable") if i not in set(train[u])]
        expected.append(order[:k])
    for name, exclude in forms.items():
        got = topk_from_scores(scores, k, exclude)
        assert got.dtype == torch.int64 and got.shape == (n_users, k), name
        assert got.tolist() == expected, name


def test_topk_rejects_bad_input():
    scores = torch.rand(3, 5)
    with pytest.raises(ValueError, match="between 1 and the number of items"):
        topk_from_scores(scores, 6)
    with pytest.raises(ValueError, match="exclude has 2 rows but scores has 3"):
        topk_from_scores(scores, 2, [[0], [1]])
    with pytest.raises(ValueError, match="outside"):
        topk_from_scores(scores, 2, [[0], [5], []])
    with pytest.raises(ValueError, match="1 row\\(s\\) have fewer than k=3"):
        topk_from_scores(scores, 3, [[0, 1, 2], [], []])
    with pytest.raises(ValueError, match="NaN"):
        topk_from_scores(torch.tensor([[0.1, float("nan")]]), 1)
    with pytest.raises(ValueError, match="users, items"):
        topk_from_scores(torch.rand(5), 1)


# --------------------------------------------------------------------------- ranking metrics


def test_ranking_metrics_by_hand():
    topk = torch.tensor(
        [
            [5, 1, 2, 0, 3],  # relevant {2, 5}: hits at ranks 1 and 3
            [0, 3, 7, 1, 2],  # relevant {7}: hit at rank 3
            [0, 1, 2, 3, 4],  # relevant {4, 6, 8, 9}: hit only at rank 5
        ]
    )
    relevant = [{2, 5}, np.array([7]), torch.tensor([9, 8, 6, 4])]
    out = ranking_metrics(topk, relevant, ks=(3, 5))

    log2 = math.log2
    assert out["ndcg@3"] == pytest.approx([(1 + 1 / log2(4)) / (1 + 1 / log2(3)), 1 / log2(4), 0.0])
    assert out["recall@3"] == pytest.approx([1.0, 1.0, 0.0])
    assert out["precision@3"] == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert out["hit@3"] == pytest.approx([1.0, 1.0, 0.0])
    assert out["mrr@3"] == pytest.approx([1.0, 1 / 3, 0.0])

    ideal4 = sum(1 / log2(r + 1) for r in range(1, 5))
    assert out["ndcg@5"][2] == pytest.approx((1 / log2(6)) / ideal4)
    assert out["recall@5"][2] == pytest.approx(1 / 4)
    assert out["precision@5"] == pytest.approx([2 / 5, 1 / 5, 1 / 5])
    assert out["mrr@5"][2] == pytest.approx(1 / 5)
    assert set(out) == {f"{m}@{k}" for m in metrics.RANKING_METRICS for k in (3, 5)}
    assert all(v.dtype == np.float64 and v.shape == (3,) for v in out.values())


def test_recall_divides_by_all_relevant_items():
    # 4 relevant items, all of the top 3 are hits: recall@3 = 3/4 (not 3/min(3, 4) = 1)
    out = ranking_metrics(np.array([[1, 2, 3]]), [[1, 2, 3, 4]], ks=(3,))
    assert out["recall@3"] == pytest.approx([0.75])
    assert out["ndcg@3"] == pytest.approx([1.0])  # ideal DCG is over min(k, n_relevant) = 3 items


def test_ndcg_matches_sklearn_full_ranking():
    rng = np.random.default_rng(3)
    n_users, n_items = 30, 25
    scores = rng.random((n_users, n_items))
    y_true = (rng.random((n_users, n_items)) < 0.2).astype(int)
    y_true[y_true.sum(axis=1) == 0, 0] = 1  # every user has a relevant item
    relevant = [np.flatnonzero(row) for row in y_true]
    topk = topk_from_scores(torch.from_numpy(scores), n_items)
    for k in (5, n_items):
        ours = ranking_metrics(topk, relevant, ks=(k,))[f"ndcg@{k}"]
        per_user = [ndcg_score(y_true[[u]], scores[[u]], k=k) for u in range(n_users)]
        assert 0 < ours.mean() < 1
        np.testing.assert_allclose(ours, per_user, rtol=1e-12)
    assert ranking_metrics(topk, relevant, ks=(n_items,))[f"recall@{n_items}"] == pytest.approx(1.0)


def test_ranking_metrics_reject_bad_input():
    topk = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    with pytest.raises(ValueError, match="2 of 3 users have no relevant items"):
        ranking_metrics(topk, [[1], [], set()], ks=(3,))
    with pytest.raises(ValueError, match="width 3"):
        ranking_metrics(topk, [[1], [2], [3]], ks=(10,))
    with pytest.raises(ValueError, match="relevant has 2 users but topk has 3"):
        ranking_metrics(topk, [[1], [2]], ks=(3,))
    with pytest.raises(ValueError, match="repeats"):
        ranking_metrics(np.array([[0, 1, 0]]), [[1]], ks=(3,))


# --------------------------------------------------------------------------- AUC


def test_auc_by_hand_with_ties():
    scores = torch.tensor([0.9, 0.5, 0.5, 0.1, 0.7])
    # positives {0, 1} vs negatives {2, 3}: 0>2, 0>3, 1=2 (1/2), 1>3 -> 3.5 / 4
    assert auc_per_user(scores, [0, 1], [2, 3]) == pytest.approx(3.5 / 4)
    # negatives default to every other candidate: adds item 4 (0>4, 1<4) -> 4.5 / 6
    assert auc_per_user(scores, [0, 1]) == pytest.approx(4.5 / 6)


def test_auc_matches_sklearn():
    rng = np.random.default_rng(4)
    for _ in range(5):
        scores = np.round(rng.random(200), 1)  # coarse scores make many ties
        labels = rng.random(200) < 0.3
        pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
        ours = auc_per_user(torch.from_numpy(scores), pos, neg)
        assert ours == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auc_rejects_bad_input():
    scores = torch.tensor([0.3, 0.2, 0.1])
    with pytest.raises(ValueError, match="positives and negatives, got 0 and 3"):
        auc_per_user(scores, [], [0, 1, 2])
    with pytest.raises(ValueError, match="got 3 and 0"):
        auc_per_user(scores, [0, 1, 2])
    with pytest.raises(ValueError, match="share items"):
        auc_per_user(scores, [0, 1], [1, 2])
    with pytest.raises(ValueError, match="outside"):
        auc_per_user(scores, [0], [3])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_deterministic_per_seed():
    values = np.random.default_rng(5).random(300)
    assert bootstrap_ci(values, 500, seed=7) == bootstrap_ci(values, 500, seed=7)
    assert bootstrap_ci(values, 500, seed=7) != bootstrap_ci(values, 500, seed=8)


def test_bootstrap_interval_contains_mean_and_narrows_with_more_users():
    rng = np.random.default_rng(6)
    few, many = rng.random(50), rng.random(5000)
    mean_few, low_few, high_few = bootstrap_ci(few)
    mean_many, low_many, high_many = bootstrap_ci(many)
    assert mean_few == pytest.approx(few.mean())
    assert low_few < mean_few < high_few
    assert low_many < mean_many < high_many
    # the width shrinks as 1/sqrt(n): 100x the users, ~10x narrower
    assert (high_many - low_many) < (high_few - low_few) / 5


def test_bootstrap_width_matches_normal_approximation():
    values = np.random.default_rng(8).normal(0.3, 0.2, size=2000)
    _, low, high = bootstrap_ci(values, n_resamples=2000, alpha=0.05)
    expected = 2 * 1.959964 * values.std() / math.sqrt(values.size)
    assert high - low == pytest.approx(expected, rel=0.15)
    _, low90, high90 = bootstrap_ci(values, n_resamples=2000, alpha=0.10)
    assert high90 - low90 < high - low


def test_bootstrap_degenerate_and_bad_input():
    assert bootstrap_ci(np.full(20, 0.25)) == pytest.approx((0.25, 0.25, 0.25))
    with pytest.raises(ValueError, match="no per-user values"):
        bootstrap_ci(np.array([]))
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci(np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(np.array([0.1, 0.2]), alpha=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(np.array([0.1, 0.2]), n_resamples=0)


def test_summarize():
    rng = np.random.default_rng(9)
    per_user = {"recall@10": rng.random(120), "ndcg@10": rng.random(120) / 2}
    out = summarize(per_user, n_resamples=300, seed=3)
    assert set(out) == set(per_user)
    for name, values in per_user.items():
        mean, low, high = bootstrap_ci(values, n_resamples=300, seed=3)
        assert out[name] == {"mean": mean, "low": low, "high": high, "n": 120}
        assert out[name]["mean"] == pytest.approx(values.mean())


def test_bootstrap_ratio_ci_pools_over_ratings_and_contains_the_value():
    from cdtl.metrics import bootstrap_ratio_ci

    rng = np.random.default_rng(0)
    counts = rng.integers(1, 50, size=300).astype(float)
    sq = rng.gamma(2.0, 0.4, size=300) * counts  # per-user sums of squared errors
    value, low, high = bootstrap_ratio_ci(sq, counts, n_resamples=500, seed=1)
    assert value == pytest.approx(sq.sum() / counts.sum())
    assert low < value < high
    assert bootstrap_ratio_ci(sq, counts, n_resamples=500, seed=1) == (value, low, high)
    with pytest.raises(ValueError, match="positive"):
        bootstrap_ratio_ci([1.0], [0.0])
