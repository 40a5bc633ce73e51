"""TextSASRec: items by their text vectors, a new catalogue, which parts train."""

from __future__ import annotations

import pytest
import torch
from sequences import N_ITEMS, _models

from cdtl.models.sequential import set_trainable


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
