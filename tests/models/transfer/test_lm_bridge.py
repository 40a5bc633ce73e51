"""LMBridge and PTUPCDRText: users and items meet through their text vectors."""

from __future__ import annotations

import pytest
import torch
from new_items import N_ITEMS, NEW, group_text

from cdtl.models.transfer import LMBridge


def test_lm_bridge_rejects_mismatched_text():
    with pytest.raises(ValueError, match="share D"):
        LMBridge(torch.zeros(5, 8), torch.zeros(3, 4))


def test_lm_bridge_source_task_learns_from_source_histories():
    text = torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    source_text, counts = text[:4], torch.tensor([2.0, 1.0, 3.0])
    users_text = torch.stack([source_text[[0, 1]].mean(0), source_text[2], source_text[[1, 2, 3]].mean(0)])
    model = LMBridge(text[4:], users_text, dim=4, hidden=8, dropout=0.0, source_text=source_text, source_counts=counts,
                     loss="softmax")
    batch = {"user": torch.tensor([0, 1, 2, 2]), "item": torch.tensor([0, 2, 1, 3]), "domain": torch.tensor(0)}
    loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and model.user_tower[0].weight.grad.abs().sum() > 0
    plain = LMBridge(text[4:], users_text, dim=4, hidden=8)
    with pytest.raises(ValueError, match="source task"):
        plain.loss(batch)
    with pytest.raises(ValueError, match="come together"):
        LMBridge(text[4:], users_text, source_text=source_text)
    alone = {"user": torch.tensor([1]), "item": torch.tensor([2]), "domain": torch.tensor(0)}
    assert model.loss(alone).item() == 0.0  # a user with a single source item has no rest to predict it from


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
