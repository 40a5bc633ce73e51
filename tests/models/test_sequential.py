"""Every next-item model alike (SASRec, GRU4Rec, TextSASRec with or without ids): shapes, no NaN, causal mask, learned order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sequences import MAX_LEN, N_ITEMS, _cycles, _models

from cdtl.data.sequential import left_pad
from cdtl.models.sequential import next_item_batches
from cdtl.train import TrainConfig, fit


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
