"""LMBridge and PTUPCDRText: users and items meet through their text vectors."""

from __future__ import annotations

import pytest
import torch

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
