"""rank_next, rank_sampled and RecentOnly: full and sampled ranking of the next item, a history cut to its last items."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from cdtl.data import RecData
from cdtl.data.sequential import leave_last_out, sampled_negatives
from cdtl.models.sequential import SequencePopularity, rank_next, rank_sampled


def _toy_split():
    rows = [(f"u{u}", f"a{(u + t) % 30}", t) for u in range(20) for t in range(6)]
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"]).assign(domain="a")
    ids = [f"a{k}" for k in range(30)]
    return leave_last_out(RecData("toy", inter, pd.DataFrame({"item": ids, "title": ids, "text": ids, "domain": "a"})),
                          "a", verbose=False)


class _Oracle:
    """Scores each history's true next item highest (it knows the split's walk)."""

    def __init__(self, split, n_items):
        self.next = {tuple(h): t for h, t in zip(*[list(map(tuple, split.test_history)), split.test_target])}
        self.n_items, self.split = n_items, split

    def score_histories(self, seq):
        out = torch.zeros(len(seq), self.n_items)
        for row, s in enumerate(seq.tolist()):
            hist = tuple(i - 1 for i in s if i > 0)
            out[row, self.next.get(hist, 0)] = 1.0
        return out


def test_full_and_sampled_views_rank_a_perfect_model_first_and_popularity_lower():
    split = _toy_split()
    oracle = _Oracle(split, split.n_items)
    full = rank_next(oracle, split, "test", (1, 10), max_len=10)
    neg = sampled_negatives(split, "test", n=20, seed=0)
    sampled = rank_sampled(oracle, split, neg, "test", (1, 10), max_len=10)
    assert full["hit@1"].mean() == 1.0 and sampled["ndcg@10"].mean() == 1.0
    pop = SequencePopularity(split.train, split.n_items)
    assert rank_sampled(pop, split, neg, "test", (10,), max_len=10)["ndcg@10"].mean() < 1.0
    # a history's own items are never recommended: a model that scores only them finds nothing
    class Repeat:
        def score_histories(self, seq):
            out = torch.zeros(len(seq), split.n_items)
            for row, s in enumerate(seq.tolist()):
                out[row, [i - 1 for i in s if i > 0]] = 1.0
            return out
    assert rank_next(Repeat(), split, "test", (1,), max_len=10)["hit@1"].mean() < 0.2


def test_recent_only_hides_all_but_the_last_items_of_each_history():
    from cdtl.models.sequential import RecentOnly

    class Echo:
        def score_histories(self, seq):
            return seq.float()

    seq = torch.tensor([[0, 3, 4, 5], [6, 7, 8, 9]])
    assert RecentOnly(Echo(), 2).score_histories(seq).tolist() == [[0, 0, 4, 5], [0, 0, 8, 9]]
    assert RecentOnly(Echo(), 9).score_histories(seq).tolist() == seq.float().tolist()
    assert seq.tolist() == [[0, 3, 4, 5], [6, 7, 8, 9]]  # the caller's histories are left as they were
    with pytest.raises(ValueError, match="keep"):
        RecentOnly(Echo(), 0)


def test_history_items_compete_with_the_target_only_when_not_excluded():
    split = _toy_split()
    oracle = _Oracle(split, split.n_items)

    class HistoryFirst:
        """The true next item scores 1, the history's own items 2: only excluding them lets the target win."""

        def score_histories(self, seq):
            out = oracle.score_histories(seq)
            for row, s in enumerate(seq.tolist()):
                out[row, [i - 1 for i in s if i > 0]] = 2.0
            return out

    excluded = rank_next(HistoryFirst(), split, "test", (1, 10), max_len=10)
    kept = rank_next(HistoryFirst(), split, "test", (1, 10), max_len=10, exclude_history=False)
    assert excluded["hit@1"].mean() == 1.0
    assert kept["hit@1"].mean() == 0.0 and kept["hit@10"].mean() == 1.0  # 5 history items, then the target
