"""DropoutNet: new items ranked by their text, their ids never trained, users known only by text scored."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from new_items import N_ITEMS, N_USERS, NEW, group_text, training_pairs

from cdtl.models.batches import softmax_batches
from cdtl.models.dropoutnet import DropoutNet
from cdtl.train import TrainConfig, fit


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
