"""next_item_batches and item_counts: batches of padded histories, sampled negatives with their log-q correction."""

from __future__ import annotations

import numpy as np
import torch
from sequences import MAX_LEN, N_ITEMS, _cycles

from cdtl.models.sequential import SASRec, item_counts, next_item_batches
from cdtl.train import TrainConfig, fit, set_seed


def test_sampled_softmax_with_log_q_trains():
    set_seed(0)
    model = SASRec(N_ITEMS, 16, max_len=MAX_LEN, dropout=0.0)
    hist = _cycles()
    batches = next_item_batches(hist, MAX_LEN, 16, n_items=N_ITEMS, n_negatives=5, item_counts=item_counts(hist, N_ITEMS))
    batch = next(iter(batches(0, torch.Generator().manual_seed(0))))
    assert batch["negatives"].shape == (5,) and batch["log_q"].shape == (N_ITEMS,)
    losses = [r["train_loss"] for r in fit(model, batches, TrainConfig(epochs=15, lr=1e-2, progress=False)).history]
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]
