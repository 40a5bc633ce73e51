"""Every chapter scores its models with these metrics, so all results share one tested definition."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

import numpy as np
import torch

from cdtl.beyond_accuracy import coverage, novelty, popular_share  # noqa: F401 (what a model recommends, beside how well)

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[float]]
IndexLike = Union[np.ndarray, torch.Tensor, Iterable[int]]

RANKING_METRICS = ("recall", "ndcg", "hit", "mrr", "precision")


# --------------------------------------------------------------------------- helpers


def _to_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _index_array(values: IndexLike, what: str) -> np.ndarray:
    """A 1-D int64 array from a tensor, array, list or set of item indices."""
    if isinstance(values, (set, frozenset)):
        values = sorted(values)
    array = _to_numpy(values)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be 1-D item indices, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must hold integer item indices, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _paired_ratings(pred: ArrayLike, true: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = _to_numpy(pred).astype(np.float64).ravel()
    t = _to_numpy(true).astype(np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in length: {p.size} vs {t.size}")
    if p.size == 0:
        raise ValueError("pred and true are empty: no ratings to score")
    for name, values in (("pred", p), ("true", t)):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise ValueError(f"{name} holds {bad} NaN or infinite value(s)")
    return p, t


# --------------------------------------------------------------------------- rating metrics


def mae(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean absolute error of predicted against true ratings."""
    p, t = _paired_ratings(pred, true)
    return float(np.mean(np.abs(p - t)))


def rmse(pred: ArrayLike, true: ArrayLike) -> float:
    """Root mean squared error of predicted against true ratings."""
    p, t = _paired_ratings(pred, true)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def like_prf(pred: ArrayLike, true: ArrayLike, threshold: float = 4.0) -> dict[str, float]:
    """Precision, recall and F1 of "like" predictions, where a rating >= `threshold` is a like.

    A ratio whose denominator is zero (no predicted likes, or no true likes) is 0.0,
    as scikit-learn's `zero_division=0`.
    """
    p, t = _paired_ratings(pred, true)
    pred_like, true_like = p >= threshold, t >= threshold
    tp = int(np.count_nonzero(pred_like & true_like))
    n_pred, n_true = int(pred_like.sum()), int(true_like.sum())
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


# --------------------------------------------------------------------------- full ranking


def _exclusion_pairs(exclude: Any, n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, item) index vectors of the entries to mask, from any supported `exclude` form."""
    if isinstance(exclude, torch.Tensor) and exclude.layout == torch.sparse_csr:
        indptr, items = exclude.crow_indices(), exclude.col_indices()
    elif hasattr(exclude, "indptr") and hasattr(exclude, "indices"):  # scipy.sparse CSR
        indptr, items = torch.as_tensor(exclude.indptr), torch.as_tensor(exclude.indices)
    else:
        if len(exclude) != n_rows:
            raise ValueError(f"exclude has {len(exclude)} rows but scores has {n_rows}")
        per_row = [torch.as_tensor(_index_array(r, "exclude row")) for r in exclude]
        lengths = torch.tensor([len(r) for r in per_row], dtype=torch.int64)
        items = torch.cat(per_row) if per_row else torch.zeros(0, dtype=torch.int64)
        rows = torch.repeat_interleave(torch.arange(n_rows), lengths)
        return rows, items
    if len(indptr) - 1 != n_rows:
        raise ValueError(f"exclude has {len(indptr) - 1} rows but scores has {n_rows}")
    lengths = (indptr[1:] - indptr[:-1]).to(torch.int64)
    rows = torch.repeat_interleave(torch.arange(n_rows), lengths)
    return rows, items.to(torch.int64)


def topk_from_scores(scores: torch.Tensor, k: int, exclude: Any = None) -> torch.Tensor:
    """The `k` best-scored items per row, after masking each row's `exclude` items with -inf.

    `scores` is one batch of users by all items. `exclude` gives, for each row of that
    batch, the items not to recommend (usually the user's training items), as one of:
    a sequence of 1-D index collections (tensor, array, list or set), a scipy.sparse CSR
    matrix or a torch sparse CSR tensor with one row per score row; None masks nothing.
    `scores` is not modified. Returns (n_rows, k) int64 item indices, best first.
    Raises ValueError if a row has fewer than `k` items left to rank.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be (users, items), got shape {tuple(scores.shape)}")
    n_rows, n_items = scores.shape
    if not 1 <= k <= n_items:
        raise ValueError(f"k must be between 1 and the number of items ({n_items}), got {k}")
    if torch.isnan(scores).any():
        raise ValueError("scores hold NaN")
    masked = scores.clone()
    if exclude is not None:
        rows, items = _exclusion_pairs(exclude, n_rows)
        if items.numel():
            if int(items.min()) < 0 or int(items.max()) >= n_items:
                raise ValueError(f"exclude holds item indices outside [0, {n_items})")
            masked[rows.to(scores.device), items.to(scores.device)] = float("-inf")
    values, topk = torch.topk(masked, k, dim=1)
    if torch.isneginf(values[:, -1]).any():
        short = int(torch.isneginf(values[:, -1]).sum())
        raise ValueError(f"{short} row(s) have fewer than k={k} items left after exclusion")
    return topk


def _checked_topk(topk: torch.Tensor | np.ndarray, relevant: Sequence[IndexLike],
                  ks: Iterable[int]) -> tuple[np.ndarray, tuple[int, ...]]:
    """The top-k lists as an integer array and the cutoffs, once both are checked against each other and ``relevant``."""
    top = _to_numpy(topk)
    if top.ndim != 2:
        raise ValueError(f"topk must be (users, K), got shape {top.shape}")
    if not np.issubdtype(top.dtype, np.integer):
        raise ValueError(f"topk must hold integer item indices, got dtype {top.dtype}")
    n_users, width = top.shape
    if n_users == 0:
        raise ValueError("topk has no users")
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1 or max(ks) > width:
        raise ValueError(f"every k in ks must be between 1 and topk's width {width}, got {ks}")
    if len(relevant) != n_users:
        raise ValueError(f"relevant has {len(relevant)} users but topk has {n_users}")
    if width > 1 and (np.diff(np.sort(top, axis=1), axis=1) == 0).any():
        raise ValueError("topk repeats an item within a user's list")
    return top, ks


def _relevant_lists(relevant: Sequence[IndexLike], n_users: int) -> list[np.ndarray]:
    """Each user's relevant items as an int64 array; a user with none is refused."""
    rel = [_index_array(r, "relevant items") for r in relevant]
    empty = sum(1 for r in rel if r.size == 0)
    if empty:
        raise ValueError(f"{empty} of {n_users} users have no relevant items; filter them out first")
    return rel


def _hit_matrix(top: np.ndarray, rel: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Whether each top-k entry is relevant (users x K, bool), and each user's number of distinct relevant items."""
    # Vectorised membership test: encode (user, item) pairs as one integer each.
    n_users = len(top)
    top = top.astype(np.int64)
    n_codes = int(max(top.max(), max(int(r.max()) for r in rel))) + 1
    rel_rows = np.repeat(np.arange(n_users, dtype=np.int64), [r.size for r in rel])
    rel_codes = np.unique(rel_rows * n_codes + np.concatenate(rel))
    n_relevant = np.bincount(rel_codes // n_codes, minlength=n_users)
    hits = np.isin(np.arange(n_users, dtype=np.int64)[:, None] * n_codes + top, rel_codes)
    return hits, n_relevant


def _metrics_at(hits: np.ndarray, n_relevant: np.ndarray, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Recall, NDCG, hit rate, MRR and precision at every k, per user, from the hit matrix."""
    discounts = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    ideal = np.cumsum(discounts)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hits_k = hits[:, :k]
        n_hits = hits_k.sum(axis=1).astype(np.float64)
        first = hits_k.argmax(axis=1)  # 0 when no hit; masked below
        out[f"recall@{k}"] = n_hits / n_relevant
        out[f"ndcg@{k}"] = (hits_k @ discounts[:k]) / ideal[np.minimum(k, n_relevant) - 1]
        out[f"hit@{k}"] = (n_hits > 0).astype(np.float64)
        out[f"mrr@{k}"] = np.where(n_hits > 0, 1.0 / (first + 1), 0.0)
        out[f"precision@{k}"] = n_hits / k
    return out


def ranking_metrics(
    topk: torch.Tensor | np.ndarray,
    relevant: Sequence[IndexLike],
    ks: Iterable[int] = (10,),
) -> dict[str, np.ndarray]:
    """Per-user ranking metrics of top-k lists against held-out relevant items.

    `topk` is (n_users, K) item indices, best first (as from `topk_from_scores`), with
    K >= max(ks); `relevant[u]` is user u's held-out items. For each k in `ks` returns
    float64 arrays of length n_users under the keys:

    - ``recall@k``: hits in the top k / number of relevant items (the standard definition,
      so a user with more than k relevant items cannot reach 1.0);
    - ``ndcg@k``: binary-relevance DCG with a log2(rank + 1) discount, divided by the
      ideal DCG of min(k, n_relevant) hits;
    - ``hit@k``: 1.0 if any relevant item is in the top k, else 0.0;
    - ``mrr@k``: 1 / rank of the first relevant item in the top k, else 0.0;
    - ``precision@k``: hits in the top k / k.

    Users with no relevant items are rejected (ValueError); filter them out first.
    """
    top, ks = _checked_topk(topk, relevant, ks)
    rel = _relevant_lists(relevant, len(top))
    hits, n_relevant = _hit_matrix(top, rel)
    return _metrics_at(hits, n_relevant, ks)


# --------------------------------------------------------------------------- AUC


def auc_per_user(
    scores: torch.Tensor | np.ndarray,
    positives: IndexLike,
    negatives: IndexLike | None = None,
) -> float:
    """AUC of one user's scores: the chance a positive outscores a negative (ties count 1/2).

    `scores` is the user's 1-D scores over candidate items; `positives` and `negatives`
    index into it. `negatives=None` takes every candidate that is not a positive.
    """
    s = _to_numpy(scores).astype(np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores must be one user's 1-D scores, got shape {s.shape}")
    pos = np.unique(_index_array(positives, "positives"))
    neg = (
        np.setdiff1d(np.arange(s.size), pos)
        if negatives is None
        else np.unique(_index_array(negatives, "negatives"))
    )
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"AUC needs positives and negatives, got {pos.size} and {neg.size}")
    for name, idx in (("positives", pos), ("negatives", neg)):
        if idx[0] < 0 or idx[-1] >= s.size:
            raise ValueError(f"{name} hold indices outside [0, {s.size})")
    if np.intersect1d(pos, neg).size:
        raise ValueError("positives and negatives share items")
    pos_s, neg_s = s[pos], np.sort(s[neg])
    if np.isnan(pos_s).any() or np.isnan(neg_s).any():
        raise ValueError("scores hold NaN")
    below = np.searchsorted(neg_s, pos_s, side="left")  # negatives strictly lower
    tied = np.searchsorted(neg_s, pos_s, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (pos.size * neg.size))


# --------------------------------------------------------------------------- uncertainty


def bootstrap_ci(
    per_user_values: ArrayLike,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, low, high): the mean over users with a percentile-bootstrap (1 - alpha) interval.

    Users are resampled with replacement; the same seed and inputs give the same interval.
    """
    values = _to_numpy(per_user_values).astype(np.float64).ravel()
    if values.size == 0:
        raise ValueError("no per-user values to bootstrap")
    if np.isnan(values).any():
        raise ValueError("per-user values hold NaN")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    n = values.size
    chunk = max(1, 4_000_000 // n)  # bounds memory at ~32 MB of indices per step
    means = np.concatenate(
        [
            values[rng.integers(0, n, size=(min(chunk, n_resamples - start), n))].mean(axis=1)
            for start in range(0, n_resamples, chunk)
        ]
    )
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(values.mean()), float(low), float(high)


def bootstrap_ratio_ci(
    numerators: ArrayLike,
    denominators: ArrayLike,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(value, low, high) of sum(num) / sum(den) with users resampled with replacement.

    For metrics pooled over ratings rather than averaged over users: per user, the sum of
    squared errors and the number of ratings give the MSE of every resample (take the square
    root of all three for RMSE). Deterministic per seed.
    """
    num = _to_numpy(numerators).astype(np.float64).ravel()
    den = _to_numpy(denominators).astype(np.float64).ravel()
    if num.size == 0 or num.shape != den.shape:
        raise ValueError(f"numerators and denominators must be non-empty and equally long, got {num.size} and {den.size}")
    if (den <= 0).any():
        raise ValueError("every denominator (e.g. a user's number of ratings) must be positive")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    rng = np.random.default_rng(seed)
    n = num.size
    chunk = max(1, 4_000_000 // n)
    ratios = []
    for start in range(0, n_resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_resamples - start), n))
        ratios.append(num[idx].sum(axis=1) / den[idx].sum(axis=1))
    low, high = np.quantile(np.concatenate(ratios), [alpha / 2, 1 - alpha / 2])
    return float(num.sum() / den.sum()), float(low), float(high)


def summarize(
    per_user: Mapping[str, ArrayLike],
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, dict[str, float]]:
    """{metric: {mean, low, high, n}} for each per-user metric array, via `bootstrap_ci`.

    Every metric uses the same seed, so metrics over the same users share resamples.
    """
    summary: dict[str, dict[str, float]] = {}
    for name, values in per_user.items():
        mean, low, high = bootstrap_ci(values, n_resamples=n_resamples, alpha=alpha, seed=seed)
        summary[name] = {"mean": mean, "low": low, "high": high, "n": int(np.size(values))}
    return summary
