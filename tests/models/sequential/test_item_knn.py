"""LastItemKNN: the next item is the one most often seen with the history's last item."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdtl.models.sequential import LastItemKNN, SequencePopularity


def test_last_item_knn_and_popularity():
    hist = [np.array([0, 1]), np.array([0, 1]), np.array([2, 3]), np.array([4, 4, 4])]
    knn = LastItemKNN(hist, 6, k=2)
    scores = knn.score_histories(torch.tensor([[0, 1], [0, 3]]))  # last items 0 and 2
    assert scores[0].argmax().item() == 1 and scores[1].argmax().item() == 3
    pop = SequencePopularity(hist, 6).score_histories(torch.zeros(2, 3, dtype=torch.long))
    assert pop.shape == (2, 6) and pop[0].argmax().item() == 4


def test_similarity_is_the_cosine_of_item_columns_with_k_neighbours_kept():
    hist = [np.array([0, 1, 0]), np.array([0, 2]), np.array([1, 2]), np.array([0, 1])]
    knn = LastItemKNN(hist, 4, k=5)
    # items 0 and 1 share users 0 and 3 of their 3 each (a repeat counts once): cosine 2 / 3
    assert knn.similarity[0, 1] == pytest.approx(2 / 3) and knn.similarity[0, 0] == 0.0
    assert not knn.similarity[3].toarray().any()  # an item nobody saw has no neighbour
    one = LastItemKNN(hist, 4, k=1)
    assert all((one.similarity[r].toarray() != 0).sum() <= 1 for r in range(4))
    assert one.similarity[2].toarray().argmax() in (0, 1)
    empty = knn.score_histories(torch.zeros(1, 3, dtype=torch.long))  # only padding: the popularity prior
    assert torch.equal(empty[0], knn.prior) and empty[0].argmax().item() == 0
    with pytest.raises(ValueError, match="k must be a positive"):
        LastItemKNN(hist, 4, k=0)
