"""GRU4Rec: tied item embeddings without the padding row, a last state that has read the whole history, sizes checked."""

from __future__ import annotations

import pytest
import torch

from cdtl.models.sequential import GRU4Rec


def test_item_vectors_are_the_embeddings_without_the_padding_row():
    model = GRU4Rec(n_items=7, dim=4, dropout=0.0)
    assert model.item_vectors().shape == (7, 4)
    assert torch.equal(model.item_vectors(), model.embedding.weight[1:])
    assert torch.equal(model.embedding.weight[0], torch.zeros(4))


def test_the_last_state_has_read_the_first_item_of_the_history():
    torch.manual_seed(0)
    model = GRU4Rec(n_items=7, dim=8, layers=2, dropout=0.0).eval()
    with torch.no_grad():
        scores = model.score_histories(torch.tensor([[0, 1, 2, 3], [0, 4, 2, 3]]))
    assert scores.shape == (2, 7)
    assert not torch.allclose(scores[0], scores[1])  # only the oldest item differs


@pytest.mark.parametrize("kwargs", [{"n_items": 0}, {"n_items": 5, "dim": 0}, {"n_items": 5, "layers": 0}])
def test_sizes_must_be_positive(kwargs):
    with pytest.raises(ValueError, match="must be positive"):
        GRU4Rec(**kwargs)
