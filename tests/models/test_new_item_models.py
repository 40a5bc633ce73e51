"""Models for new items: content k-NN, DropoutNet and the tuned encoder, on data where the right ranking is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cdtl.data.tables import DataError
from cdtl.models.batches import softmax_batches
from cdtl.models.content_knn import ContentKNN
from cdtl.models.dropoutnet import DropoutNet
from cdtl.train import TrainConfig, fit

N_USERS, N_ITEMS = 60, 12  # items 0-5 are "loud", 6-11 "quiet"; items 5 and 11 are new (no training interaction)
NEW = [5, 11]


def group_text(n_items: int = N_ITEMS, noise: float = 0.05, dim: int = 8) -> torch.Tensor:
    """Stand-in text vectors: the first half of the items points one way, the second half the other."""
    g = torch.Generator().manual_seed(0)
    loud = (torch.arange(n_items) < n_items // 2).float()
    base = torch.stack([loud, 1 - loud] + [torch.zeros(n_items)] * (dim - 2), 1)
    return base + noise * torch.randn(base.shape, generator=g)


def training_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Even users consume 3 of the old loud items, odd users 3 of the old quiet ones; users 50-59 have none (cold)."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(50):
        pool = [0, 1, 2, 3, 4] if u % 2 == 0 else [6, 7, 8, 9, 10]
        for j in rng.choice(pool, 3, replace=False):
            users.append(u)
            items.append(int(j))
    return np.array(users), np.array(items)


def test_content_knn_ranks_the_nearest_text_first():
    vectors = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    knn = ContentKNN(vectors, [np.array([0])], candidates=[1, 2])
    scores = knn.score_all(torch.tensor([0]))
    assert scores.shape == (1, 2) and scores[0, 0] > scores[0, 1]


def test_content_knn_k_picks_the_closest_history_items():
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # candidate 2 equals history item 0, is orthogonal to 1
    history = [np.array([0, 1])]
    one = ContentKNN(vectors, history, candidates=[2], k=1).score_all(torch.tensor([0]))
    every = ContentKNN(vectors, history, candidates=[2], k=None).score_all(torch.tensor([0]))
    assert float(one) == pytest.approx(1.0) and float(every) == pytest.approx(0.5)


def test_content_knn_user_without_history_scores_zero_and_is_flagged():
    knn = ContentKNN(torch.eye(3), [np.array([0]), np.array([], dtype=np.int64)])
    assert knn.has_history.tolist() == [True, False]
    assert torch.all(knn.score_all(torch.tensor([1])) == 0)


def test_content_knn_places_new_items_by_text():
    text = group_text()
    users, items = training_pairs()
    histories = [items[users == u] for u in range(50)]
    knn = ContentKNN(text, histories, candidates=NEW)
    scores = knn.score_all(torch.arange(50))
    right = (scores[:, 0] > scores[:, 1]).long() == (torch.arange(50) % 2 == 0).long()
    assert right.all()


def _dropoutnet(text: torch.Tensor, seed: int = 0) -> tuple[DropoutNet, dict]:
    users, items = training_pairs()
    known_items = torch.zeros(N_ITEMS, dtype=torch.bool)
    known_items[np.unique(items)] = True
    user_text = torch.zeros(N_USERS, text.shape[1])
    for u in range(N_USERS):  # every user's content: their history's mean text; cold users 50-59 by their group's old item
        mine = items[users == u] if u < 50 else np.array([0 if u % 2 == 0 else 6])
        user_text[u] = text[mine].mean(0)
    known_users = torch.arange(N_USERS) < 50
    model = DropoutNet(text, known_items, user_text, known_users, dim=8, hidden=16, dropout=0.0)
    before = {"id": model.item_id.weight.detach().clone(), "bias": model.item_bias.weight.detach().clone()}
    fit(model, softmax_batches(users, items, N_ITEMS, 32), TrainConfig(epochs=60, lr=0.01, seed=seed, progress=False))
    return model, before


@pytest.fixture(scope="module")
def trained() -> tuple[DropoutNet, dict]:
    return _dropoutnet(group_text())


def test_dropoutnet_ranks_new_items_by_text_for_warm_and_cold_users(trained):
    model, _ = trained
    scores = model.score_all(torch.arange(N_USERS))[:, NEW]
    loud = (torch.arange(N_USERS) % 2 == 0).long()
    right = ((scores[:, 0] > scores[:, 1]).long() == loud).float()
    assert right[:50].mean() >= 0.9, f"warm users: in-taste new item first for {right[:50].mean():.0%}"
    assert right[50:].mean() >= 0.9, f"cold users: in-taste new item first for {right[50:].mean():.0%}"


def test_dropoutnet_never_trains_a_new_items_id_and_never_uses_it_as_a_negative(trained):
    model, before = trained
    assert torch.equal(model.item_id.weight[NEW], before["id"][NEW])
    assert torch.equal(model.item_bias.weight[NEW], before["bias"][NEW])
    model.train()
    model.zero_grad()
    model.loss({"user": torch.tensor([0, 1]), "item": torch.tensor([0, 6])}).backward()
    assert torch.all(model.item_id.weight.grad[NEW] == 0)
    model.zero_grad()
    model.eval()


def test_dropoutnet_scores_users_known_only_by_text(trained):
    model, _ = trained
    text = group_text()
    scores = model.score_text_users(torch.stack([text[0], text[6]]))[:, NEW]
    assert scores[0, 0] > scores[0, 1] and scores[1, 1] > scores[1, 0]


def test_dropoutnet_needs_training_items():
    text = group_text()
    with pytest.raises(ValueError, match="no item has training interactions"):
        DropoutNet(text, torch.zeros(N_ITEMS, dtype=torch.bool), torch.zeros(3, 8), torch.zeros(3, dtype=torch.bool))


def test_tuned_encoder_trains_on_history_caches_and_refuses_items_without_text(tmp_path, monkeypatch):
    from cdtl.models.tuned_encoder import tune_item_encoder

    monkeypatch.setenv("CDTL_DATA_DIR", str(tmp_path))
    items = pd.DataFrame({"item": [f"i{j}" for j in range(8)],
                          "text": ["space opera", "robot rebellion", "alien planet", "star ship",
                                   "wedding day", "summer romance", "love letters", "first date"]})
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{j}", t) for u in range(12) for t, j in enumerate(rng.choice(4, 3, replace=False) + 4 * (u % 2))]
    train = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    options = dict(epochs=1, batch_size=4, max_history=3, freeze_layers=5, max_length=16, seed=0)
    first = tune_item_encoder(items, train, **options)
    assert first.vectors.shape == (8, 384) and not first.from_cache and first.users == 12
    assert torch.allclose(first.vectors.norm(dim=1), torch.ones(8), atol=1e-4)
    again = tune_item_encoder(items, train, **options)
    assert again.from_cache and torch.equal(again.vectors, first.vectors)
    assert again.train_seconds == pytest.approx(first.train_seconds)
    other = tune_item_encoder(items, train.iloc[:-3], **options)  # other training data: a different cache entry
    assert not other.from_cache
    for record in tmp_path.rglob("tuning.json"):  # every tuning record, damaged
        record.write_text(record.read_text()[:5])
    with pytest.warns(UserWarning, match="tuning.json.*not valid JSON.*tuning the encoder again"):
        retuned = tune_item_encoder(items, train, **options)
    assert not retuned.from_cache and tune_item_encoder(items, train, **options).from_cache  # and written anew
    bad = items.assign(text=items["text"].where(items["item"] != "i2", ""))
    with pytest.raises(DataError, match=r"have no text, e\.g\. \['i2'\]"):
        tune_item_encoder(bad, train, **options)


def test_lm_bridge_attention_pooling_starts_as_the_mean_of_the_source_history():
    from cdtl.models.transfer import LMBridge

    g = torch.Generator().manual_seed(0)
    source_text, item_text = torch.randn(6, 8, generator=g), torch.randn(5, 8, generator=g)
    history = torch.tensor([[0, 1, 2], [3, 4, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    user_text = torch.stack([source_text[:3].mean(0), source_text[3:5].mean(0)])
    torch.manual_seed(0)
    mean = LMBridge(item_text, user_text, dim=4, hidden=8, dropout=0.0)
    torch.manual_seed(0)
    attention = LMBridge(item_text, user_text, dim=4, hidden=8, dropout=0.0, pooling="attention",
                         source_text=source_text, history=history, history_mask=mask)
    users = torch.tensor([0, 1])
    assert torch.allclose(mean.user_side(users)[0], attention.user_side(users)[0], atol=1e-5)
    assert any(n.startswith("pool.") for n, _ in attention.named_parameters())
    with pytest.raises(ValueError, match="pooling='attention' pools the source history"):
        LMBridge(item_text, user_text, pooling="attention")


def test_lm_bridge_softmax_never_ranks_held_out_items_in_training():
    from cdtl.models.transfer import LMBridge

    text = group_text()
    known = torch.ones(N_ITEMS, dtype=torch.bool)
    known[NEW] = False
    model = LMBridge(text, text[:4], dim=4, hidden=8, dropout=0.0, item_known=known, loss="softmax")
    model.loss({"user": torch.tensor([0, 1, 2]), "item": torch.tensor([0, 6, 1])}).backward()
    assert torch.all(model.item_bias.weight.grad[NEW] == 0) and model.item_bias.weight.grad[known].abs().sum() > 0
    assert model.score_all(torch.tensor([0])).shape == (1, N_ITEMS)  # and it still scores every item
