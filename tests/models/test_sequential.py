"""Next-item models: shapes, the causal mask, learning a toy order, no NaN, determinism, transfer, baselines, evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cdtl.data import RecData
from cdtl.data.sequential import leave_last_out, left_pad, sampled_negatives
from cdtl.models.sequential import (
    GRU4Rec,
    LastItemKNN,
    SASRec,
    SequencePopularity,
    TextSASRec,
    item_counts,
    next_item_batches,
    rank_next,
    rank_sampled,
    set_trainable,
)
from cdtl.train import TrainConfig, fit, set_seed

N_ITEMS, MAX_LEN = 12, 8


def _cycles(n_users: int = 48) -> list[np.ndarray]:
    """Histories of 3 to 10 items that walk the items in order (k is always followed by k + 1): only order tells the next item."""
    rng = np.random.default_rng(0)
    return [(rng.integers(N_ITEMS) + np.arange(rng.integers(3, 11))) % N_ITEMS for _ in range(n_users)]


def _models() -> dict[str, torch.nn.Module]:
    set_seed(0)
    text = torch.randn(N_ITEMS, 16)
    return {"sasrec": SASRec(N_ITEMS, 16, max_len=MAX_LEN, dropout=0.0),
            "gru4rec": GRU4Rec(N_ITEMS, 16, dropout=0.0),
            "text": TextSASRec(text, 16, max_len=MAX_LEN, dropout=0.0, adaptor_dropout=0.0, n_experts=2),
            "text_ids": TextSASRec(text, 16, max_len=MAX_LEN, dropout=0.0, use_ids=True, seq_seq_weight=0.1)}


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "text", "text_ids"])
def test_shapes_and_no_nan_on_padded_histories(name):
    model = _models()[name].eval()
    seq, _ = left_pad([np.array([1, 2, 3]), np.array([], dtype=np.int64), np.arange(12)], MAX_LEN)
    seq = torch.from_numpy(seq)
    with torch.no_grad():
        hidden, scores = model.encode(seq), model.score_histories(seq)
    assert hidden.shape == (3, MAX_LEN, 16) and scores.shape == (3, N_ITEMS)
    assert torch.isfinite(hidden).all() and torch.isfinite(scores).all()


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "text", "text_ids"])
def test_a_future_item_cannot_change_an_earlier_output(name):
    model = _models()[name].eval()
    seq = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8]])
    changed = seq.clone()
    changed[0, -1] = 1  # only the last (most recent) item differs
    with torch.no_grad():
        one, two = model.encode(seq), model.encode(changed)
    assert torch.allclose(one[:, :-1], two[:, :-1], atol=1e-6)
    assert not torch.allclose(one[:, -1], two[:, -1])


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "text", "text_ids"])
def test_loss_falls_and_the_order_is_learned(name):
    model = _models()[name]
    batches = next_item_batches(_cycles(), MAX_LEN, batch_size=16)
    result = fit(model, batches, TrainConfig(epochs=25, lr=1e-2, progress=False, seed=0))
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0] and all(np.isfinite(losses))
    seq = torch.from_numpy(left_pad([np.array([2, 3, 4]), np.array([9, 10])], MAX_LEN)[0])
    with torch.no_grad():
        assert model.score_histories(seq).argmax(1).tolist() == [5, 11]


def test_sampled_softmax_with_log_q_trains():
    set_seed(0)
    model = SASRec(N_ITEMS, 16, max_len=MAX_LEN, dropout=0.0)
    hist = _cycles()
    batches = next_item_batches(hist, MAX_LEN, 16, n_items=N_ITEMS, n_negatives=5, item_counts=item_counts(hist, N_ITEMS))
    batch = next(iter(batches(0, torch.Generator().manual_seed(0))))
    assert batch["negatives"].shape == (5,) and batch["log_q"].shape == (N_ITEMS,)
    losses = [r["train_loss"] for r in fit(model, batches, TrainConfig(epochs=15, lr=1e-2, progress=False)).history]
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


def test_same_seed_same_weights():
    weights = []
    for _ in range(2):
        set_seed(3)
        model = SASRec(N_ITEMS, 16, max_len=MAX_LEN, dropout=0.2)
        fit(model, next_item_batches(_cycles(), MAX_LEN, 16), TrainConfig(epochs=2, progress=False, seed=3))
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_text_model_moves_to_a_new_catalogue_and_freezes_all_but_the_adaptor():
    model = _models()["text_ids"]
    other = model.with_catalogue(torch.randn(30, 16))
    assert other.score_histories(torch.tensor([[0, 0, 0, 0, 0, 1, 2, 3]])).shape == (1, 30)
    assert model.n_items == N_ITEMS  # the original is untouched
    set_trainable(other, "adaptor")
    trainable = {n for n, p in other.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("adaptor.", "ids.")) for n in trainable)
    assert torch.equal(other.adaptor.weight, model.adaptor.weight)
    with pytest.raises(ValueError, match="same language model"):
        model.with_catalogue(torch.randn(5, 7))
    with pytest.raises(ValueError, match="mode"):
        set_trainable(other, "half")


def test_history_longer_than_max_len_is_refused_by_the_model():
    with pytest.raises(ValueError, match="max_len"):
        SASRec(N_ITEMS, 16, max_len=4).encode(torch.ones(1, 6, dtype=torch.long))


def test_last_item_knn_and_popularity():
    hist = [np.array([0, 1]), np.array([0, 1]), np.array([2, 3]), np.array([4, 4, 4])]
    knn = LastItemKNN(hist, 6, k=2)
    scores = knn.score_histories(torch.tensor([[0, 1], [0, 3]]))  # last items 0 and 2
    assert scores[0].argmax().item() == 1 and scores[1].argmax().item() == 3
    pop = SequencePopularity(hist, 6).score_histories(torch.zeros(2, 3, dtype=torch.long))
    assert pop.shape == (2, 6) and pop[0].argmax().item() == 4


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
