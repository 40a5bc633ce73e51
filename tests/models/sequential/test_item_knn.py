"""LastItemKNN: the next item is the one most often seen with the history's last item."""

from __future__ import annotations

import numpy as np
import torch

from cdtl.models.sequential import LastItemKNN, SequencePopularity


def test_last_item_knn_and_popularity():
    hist = [np.array([0, 1]), np.array([0, 1]), np.array([2, 3]), np.array([4, 4, 4])]
    knn = LastItemKNN(hist, 6, k=2)
    scores = knn.score_histories(torch.tensor([[0, 1], [0, 3]]))  # last items 0 and 2
    assert scores[0].argmax().item() == 1 and scores[1].argmax().item() == 3
    pop = SequencePopularity(hist, 6).score_histories(torch.zeros(2, 3, dtype=torch.long))
    assert pop.shape == (2, 6) and pop[0].argmax().item() == 4
