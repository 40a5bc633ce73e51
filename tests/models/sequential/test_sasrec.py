"""SASRec: seeded training is reproducible and a history longer than max_len is refused."""

from __future__ import annotations

import pytest
import torch
from sequences import MAX_LEN, N_ITEMS, _cycles

from cdtl.models.sequential import SASRec, next_item_batches
from cdtl.train import TrainConfig, fit, set_seed


def test_same_seed_same_weights():
    weights = []
    for _ in range(2):
        set_seed(3)
        model = SASRec(N_ITEMS, 16, max_len=MAX_LEN, dropout=0.2)
        fit(model, next_item_batches(_cycles(), MAX_LEN, 16), TrainConfig(epochs=2, progress=False, seed=3))
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_history_longer_than_max_len_is_refused_by_the_model():
    with pytest.raises(ValueError, match="max_len"):
        SASRec(N_ITEMS, 16, max_len=4).encode(torch.ones(1, 6, dtype=torch.long))
