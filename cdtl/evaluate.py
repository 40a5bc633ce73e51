"""One way to score any model: full ranking over all items and rating errors, per user, summarised with bootstrap intervals."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cdtl import distributed
from cdtl.metrics import bootstrap_ratio_ci, like_prf, mae, ranking_metrics, rmse, summarize, topk_from_scores
from cdtl.paired import (  # noqa: F401 (re-exported: comparing two systems is part of scoring them)
    align_users,
    compare_to_reference,
    format_difference,
    holm,
    paired_difference,
    per_system,
)

#: bytes a full-ranking chunk may take by default (scores, their masked copy and top-k workspace)
DEFAULT_MEMORY_BUDGET = 512 * 2**20
_BYTES_PER_SCORE = 12  # float32 scores + the masked float32 copy + slack for the scorer's own temporaries


def _users_array(users: Any, name: str = "users") -> np.ndarray:
    array = np.asarray(users)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of user indices, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integer user indices (encode ids with IdMap), got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def group_items(users_idx: np.ndarray, items_idx: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(users, relevant): the sorted distinct users of (user, item) pairs and each one's items, for ``evaluate_ranking``."""
    u, i = _users_array(users_idx, "users_idx"), _users_array(items_idx, "items_idx")
    if u.shape != i.shape:
        raise ValueError(f"users_idx and items_idx must have the same length, got {u.size} and {i.size}")
    order = np.lexsort((i, u))
    u, i = u[order], i[order]
    users, starts = np.unique(u, return_index=True)
    return users, np.split(i, starts[1:])


def evaluate_ranking(
    score_all: Callable[[Tensor], Tensor],
    users: np.ndarray,
    relevant: Sequence[np.ndarray],
    exclude_csr: Any = None,
    ks: Iterable[int] = (10,),
    batch_size: int = 2048,
    *,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    shard: bool = False,
) -> dict[str, np.ndarray]:
    """Per-user ``recall@k``, ``ndcg@k``, ``hit@k``, ``mrr@k``, ``precision@k`` from ranking all items.

    ``score_all(user_idx)`` returns (len(user_idx), n_items) scores (e.g. ``MF.score_all``).
    ``users[u]``'s held-out items are ``relevant[u]``; every user must have at least one
    (filter the others out first). ``exclude_csr`` is the (n_users, n_items) training matrix,
    indexed by user index: a user's training items are never recommended. Users are scored
    without gradients in chunks of at most ``batch_size``, fewer when a chunk's scores would
    pass ``memory_budget`` bytes (``chunk_users``), so a catalogue of millions of items ranks
    in bounded memory. With ``shard`` (under ``torchrun``) each rank ranks its share of the
    users and the top-k lists are gathered, so every rank returns the same arrays; every rank
    must call it then. Arrays follow the order of ``users``.
    """
    users = _users_array(users)
    if len(users) == 0:
        raise ValueError("users is empty: no one to evaluate")
    if len(relevant) != len(users):
        raise ValueError(f"relevant has {len(relevant)} entries but users has {len(users)}; give one item array per user")
    empty = [int(users[n]) for n, r in enumerate(relevant) if len(r) == 0]
    if empty:
        raise ValueError(
            f"{len(empty)} user(s) have no relevant items, e.g. user indices {empty[:3]}; filter them out of users and "
            "relevant first"
        )
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    ks = tuple(int(k) for k in ks)
    if not ks:
        raise ValueError("ks is empty: give at least one cut-off, e.g. (10,)")
    if exclude_csr is not None:
        if not hasattr(exclude_csr, "indptr"):
            raise TypeError(f"exclude_csr must be a scipy.sparse CSR matrix or None, got {type(exclude_csr).__name__}")
        if users.max() >= exclude_csr.shape[0] or users.min() < 0:
            raise ValueError(f"users must be row indices of exclude_csr, in [0, {exclude_csr.shape[0]})")
    top = top_k(score_all, users, max(ks), exclude_csr, batch_size, memory_budget=memory_budget, shard=shard)
    return ranking_metrics(top, relevant, ks)


def top_k(
    score_all: Callable[[Tensor], Tensor],
    users: np.ndarray,
    k: int,
    exclude_csr: Any = None,
    batch_size: int = 2048,
    *,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    shard: bool = False,
) -> Tensor:
    """(len(users), k) item indices: each user's top ``k`` of the full ranking, best first, ``exclude_csr``'s items never.

    The ranking ``evaluate_ranking`` scores (same chunks, memory budget and sharding), for
    what a model recommends rather than how well (``cdtl.beyond_accuracy``).
    """
    users = _users_array(users)
    mine = users[distributed.shard(len(users))] if shard else users
    tops = [torch.zeros(0, int(k), dtype=torch.int64)]
    with torch.no_grad():
        # the chunk size follows from the catalogue's width; without exclude_csr one user's scores tell it
        start, size = 0, 1 if exclude_csr is None else chunk_users(exclude_csr.shape[1], batch_size, memory_budget)
        while start < len(mine):
            batch = mine[start : start + size]
            scores = score_all(torch.tensor(batch))
            if scores.shape[0] != len(batch):
                raise ValueError(f"score_all returned {scores.shape[0]} rows for {len(batch)} users")
            exclude = None if exclude_csr is None else exclude_csr[batch]
            n_items = scores.shape[1]
            tops.append(topk_from_scores(scores.float(), int(k), exclude).cpu())
            del scores
            start += len(batch)
            size = chunk_users(n_items, batch_size, memory_budget)
    top = torch.cat(tops)
    return distributed.gather(top) if shard else top


def chunk_users(n_items: int, batch_size: int = 2048, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Users per full-ranking chunk: at most ``batch_size``, and few enough that n_items scores each fit the budget."""
    if int(memory_budget) < 1:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    return max(1, min(int(batch_size), int(memory_budget) // (_BYTES_PER_SCORE * max(1, int(n_items)))))


def evaluate_ratings(
    predict: Callable[[Tensor, Tensor], Tensor],
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    threshold: float = 4.0,
    batch_size: int = 65_536,
) -> dict[str, Any]:
    """Rating errors of ``predict(user_idx, item_idx)`` on held-out ratings.

    Returns ``mae``, ``rmse`` and the like-prediction ``precision``, ``recall``, ``f1``
    (a rating >= ``threshold`` is a like) over all ratings, and ``per_user``: the sorted
    distinct ``users`` with each one's mean ``abs_error`` and mean ``sq_error``
    (for ``report``; the mean of per-user values weighs users, not ratings, equally).
    """
    u, i = _users_array(users), _users_array(items, "items")
    r = np.asarray(ratings, dtype=np.float64)
    if not (u.shape == i.shape == r.shape):
        raise ValueError(f"users, items and ratings must have the same length, got {u.size}, {i.size}, {r.size}")
    if u.size == 0:
        raise ValueError("no ratings to evaluate")
    with torch.no_grad():
        pred = np.concatenate(
            [
                predict(torch.tensor(u[s : s + batch_size]), torch.tensor(i[s : s + batch_size]))
                .detach().cpu().numpy().astype(np.float64).reshape(-1)
                for s in range(0, u.size, batch_size)
            ]
        )
    if pred.shape != r.shape:
        raise ValueError(f"predict returned {pred.size} values for {r.size} pairs")
    who, inverse, counts = np.unique(u, return_inverse=True, return_counts=True)
    out: dict[str, Any] = {"mae": mae(pred, r), "rmse": rmse(pred, r), **like_prf(pred, r, threshold)}
    out["per_user"] = {
        "users": who,
        "abs_error": np.bincount(inverse, weights=np.abs(pred - r)) / counts,
        "sq_error": np.bincount(inverse, weights=(pred - r) ** 2) / counts,
        "counts": counts,
    }
    return out


def popularity_scores(train_items_idx: np.ndarray, n_items: int) -> Tensor:
    """(n_items,) float32 training counts: the popularity baseline's score of every item.

    Rank with ``evaluate_ranking(lambda u: pop.expand(len(u), -1), ...)``.
    """
    items = _users_array(train_items_idx, "train_items_idx")
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"train_items_idx must lie in [0, {n_items}), got values in [{items.min()}, {items.max()}]")
    return torch.from_numpy(np.bincount(items, minlength=int(n_items)).astype(np.float32))


def slice_users(per_user: dict[str, np.ndarray], users: np.ndarray, keep: Iterable[int]) -> dict[str, np.ndarray]:
    """The per-user metrics of the users in ``keep`` (e.g. the warm or the cold ones), in ``users`` order.

    ``per_user`` arrays are aligned with ``users`` (as ``evaluate_ranking`` returns them).
    """
    users = _users_array(users)
    mask = np.isin(users, _users_array(keep if isinstance(keep, np.ndarray) else list(keep), "keep"))
    if not mask.any():
        raise ValueError("no user of keep is among users: the slice is empty")
    out = {}
    for name, values in per_user.items():
        values = np.asarray(values)
        if values.shape[:1] != users.shape:
            raise ValueError(f"per_user[{name!r}] has {values.shape[0] if values.ndim else 0} values but users has {users.size}")
        out[name] = values[mask]
    return out


def report(per_user: dict[str, np.ndarray], n_resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
    """{metric: {mean, low, high, n}}: the per-user means with 95% bootstrap intervals (``cdtl.metrics.summarize``)."""
    arrays = {k: v for k, v in per_user.items() if k != "users"}
    return summarize(arrays, n_resamples=n_resamples, seed=seed)


def format_interval(m: dict[str, float], digits: int = 4) -> str:
    """``"mean [low, high]"`` for one metric of ``report`` (just the mean when it has no interval)."""
    if "low" not in m:
        return f"{m['mean']:.{digits}f}"
    return f"{m['mean']:.{digits}f} [{m['low']:.{digits}f}, {m['high']:.{digits}f}]"


def rating_report(
    result: dict[str, Any], metrics: Iterable[str] = ("mae", "rmse"), n_resamples: int = 1000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """{metric: {mean, low, high, n}} for ``evaluate_ratings``'s result.

    MAE and RMSE are pooled over ratings (as the literature reports them) with 95 %
    intervals from resampling users; ``like_precision``/``like_recall``/``like_f1`` are
    reported over all held-out ratings without an interval.
    """
    per_user = result["per_user"]
    counts = np.asarray(per_user["counts"], dtype=np.float64)
    n = int(counts.sum())
    out: dict[str, dict[str, float]] = {}
    for name in metrics:
        if name == "mae":
            value, low, high = bootstrap_ratio_ci(per_user["abs_error"] * counts, counts, n_resamples, seed=seed)
        elif name == "rmse":
            value, low, high = np.sqrt(bootstrap_ratio_ci(per_user["sq_error"] * counts, counts, n_resamples, seed=seed))
        elif name in ("like_precision", "like_recall", "like_f1"):
            out[name] = {"mean": float(result[name.removeprefix("like_")]), "n": n}
            continue
        else:
            raise ValueError(f"unknown rating metric {name!r}; valid: mae, rmse, like_precision, like_recall, like_f1")
        out[name] = {"mean": float(value), "low": float(low), "high": float(high), "n": n}
    return out


def recall_by_item_group(
    score_all: Callable[[Tensor], Tensor],
    users: np.ndarray,
    relevant: Sequence[np.ndarray],
    item_group: np.ndarray,
    k: int = 10,
    exclude_csr: Any = None,
    batch_size: int = 2048,
) -> dict[Any, dict[str, float]]:
    """{group: {held_out, hits, recall}}: of the held-out items in each item group, the share that reached a top ``k``.

    ``item_group[j]`` labels item j (e.g. a bucket of its training popularity). Tells which
    items a model can surface: a model of ids cannot recommend items it never saw in training,
    a model of text can.
    """
    groups = np.asarray(item_group)
    users = _users_array(users)
    if len(relevant) != len(users):
        raise ValueError(f"relevant has {len(relevant)} entries but users has {len(users)}")
    held: dict[Any, int] = {}
    hits: dict[Any, int] = {}
    with torch.no_grad():
        for start in range(0, len(users), int(batch_size)):
            batch = users[start : start + int(batch_size)]
            scores = score_all(torch.tensor(batch)).float()
            if scores.shape[1] != len(groups):
                raise ValueError(f"score_all returned {scores.shape[1]} items but item_group labels {len(groups)}")
            exclude = None if exclude_csr is None else exclude_csr[batch]
            top = topk_from_scores(scores, k, exclude).cpu().numpy()
            for row, rel in zip(top, relevant[start : start + len(batch)]):
                found = np.isin(rel, row)
                for g, f in zip(groups[np.asarray(rel)], found):
                    held[g] = held.get(g, 0) + 1
                    hits[g] = hits.get(g, 0) + int(f)
    return {g: {"held_out": held[g], "hits": hits[g], "recall": hits[g] / held[g]} for g in sorted(held)}
