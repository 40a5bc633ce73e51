"""tune_item_encoder: trains on histories, caches its vectors and record, refuses items without text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cdtl.data.tables import DataError


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
