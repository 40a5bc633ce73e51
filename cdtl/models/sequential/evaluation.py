"""Score next-item models as the course scores everything: full ranking over the target catalogue, and C2DSR's sampled view.

Both views go through the package's one set of metrics (``cdtl.evaluate.evaluate_ranking`` and
``cdtl.metrics``): the full view ranks every target-domain item but those in the history; the
sampled view ranks the target among ``sampled_negatives`` (999 in C2DSR's tables), the target
put at a seeded random place among them so ties favour nobody. Sampled metrics can order
models differently from full ranking (Krichene & Rendle, KDD 2020): report full ranking, and
the sampled view only beside a published table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from cdtl.data.sequential import SequenceSplit, left_pad
from cdtl.evaluate import evaluate_ranking
from cdtl.metrics import ranking_metrics, topk_from_scores

Scorer = Callable[[Tensor], Tensor]  # (B, max_len) padded histories -> (B, n_items) scores


class RecentOnly:
    """A trained model that reads only each history's ``keep`` most recent items (the rest turned into padding).

    How much of a history does a model use? Score it with ``rank_next(RecentOnly(model, k), ...)``
    for a few ``k`` and compare: the gap is what the older items were worth.
    """

    def __init__(self, model: object, keep: int) -> None:
        if isinstance(keep, bool) or int(keep) < 1:
            raise ValueError(f"keep must be a positive number of items, got {keep!r}")
        self.model, self.keep = model, int(keep)

    def score_histories(self, seq: Tensor) -> Tensor:
        """(B, n_items) scores of left-padded histories (B, max_len) cut to their ``keep`` last positions."""
        seq = seq.clone()
        seq[:, : max(seq.shape[1] - self.keep, 0)] = 0
        return self.model.score_histories(seq)


def _scorer(model: object) -> Scorer:
    score = getattr(model, "score_histories", None)
    if score is None:
        raise TypeError(f"{type(model).__name__} has no score_histories(seq): not a next-item model")
    return score


def _rows(split: SequenceSplit, stage: str, rows: np.ndarray | None) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(rows, their histories, their targets): every user of the split, or the given row indices."""
    histories, targets = split.stage(stage)
    rows = np.arange(split.n_users) if rows is None else np.asarray(rows, dtype=np.int64)
    return rows, [histories[r] for r in rows], np.asarray(targets)[rows]


def rank_next(model: object, split: SequenceSplit, stage: str = "test", ks: Iterable[int] = (10,), max_len: int = 50,
              batch_size: int = 512, rows: np.ndarray | None = None,
              exclude_history: bool = True) -> dict[str, np.ndarray]:
    """Per-user metrics of the ``stage`` target ranked among every target-domain item not in the user's history.

    ``rows`` picks users (row indices of ``split.users``; default all). Returns ``users``
    (those row indices) and one array per metric, aligned with them. ``exclude_history=False``
    ranks the target among every target-domain item, history included (RecBole's full sort
    for sequential models excludes nothing), for comparisons with such tables.
    """
    score, columns = _scorer(model), split.target_items()
    users, histories, targets = _rows(split, stage, rows)
    padded, _ = left_pad(histories, max_len)
    column_of = np.full(split.n_items, -1)
    column_of[columns] = np.arange(len(columns))
    if (column_of[targets] < 0).any():
        raise ValueError(f"a {stage} target is outside the target domain {split.target!r}")
    seen = [np.unique(column_of[h][column_of[h] >= 0]) if exclude_history else np.zeros(0, np.int64)
            for h in histories]
    exclude = sp.csr_matrix((np.ones(sum(len(s) for s in seen)),
                             (np.repeat(np.arange(len(seen)), [len(s) for s in seen]),
                              np.concatenate(seen) if seen else [])), shape=(len(seen), len(columns)))
    cols = torch.from_numpy(columns)

    def score_all(rows: Tensor) -> Tensor:
        return score(torch.from_numpy(padded[rows.numpy()])).cpu()[:, cols]

    per_user = evaluate_ranking(score_all, np.arange(len(users)), [np.array([column_of[t]]) for t in targets], exclude,
                                ks, batch_size)
    return {"users": users, **per_user}


def rank_sampled(model: object, split: SequenceSplit, negatives: np.ndarray, stage: str = "test",
                 ks: Iterable[int] = (10,), max_len: int = 50, batch_size: int = 512, seed: int = 0,
                 rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-user metrics of the ``stage`` target ranked among its ``negatives`` row (from ``sampled_negatives``).

    ``rows`` picks users (default all); ``negatives`` has one row per user of the split.
    """
    score = _scorer(model)
    if negatives.shape[0] != split.n_users:
        raise ValueError(f"negatives has {negatives.shape[0]} rows for {split.n_users} users")
    users, histories, targets = _rows(split, stage, rows)
    padded, _ = left_pad(histories, max_len)
    width = negatives.shape[1] + 1
    place = np.random.default_rng([seed, 3]).integers(0, width, size=split.n_users)[users]  # where the target sits
    candidates = np.empty((len(users), width), dtype=np.int64)
    for n, u in enumerate(users):
        candidates[n] = np.insert(negatives[u], place[n], targets[n])
    ks = tuple(ks)
    tops = []
    with torch.no_grad():
        for start in range(0, len(users), batch_size):
            rows = slice(start, start + batch_size)
            scores = score(torch.from_numpy(padded[rows])).cpu().float()
            picked = torch.gather(scores, 1, torch.from_numpy(candidates[rows]))
            tops.append(topk_from_scores(picked, max(ks)))
    per_user = ranking_metrics(torch.cat(tops), [np.array([p]) for p in place], ks)
    return {"users": users, **per_user}
