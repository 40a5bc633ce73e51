"""SequencePopularity: every history gets the training counts of every item, whatever the history holds."""

from __future__ import annotations

import numpy as np
import torch

from cdtl.models.sequential import SequencePopularity


def test_every_history_gets_the_training_counts():
    pop = SequencePopularity([np.array([0, 2, 2]), np.array([2, 3])], n_items=5)
    scores = pop.score_histories(torch.tensor([[0, 1], [3, 4], [0, 0]]))
    assert scores.shape == (3, 5) and scores.dtype == torch.float32
    assert scores[0].tolist() == [1.0, 0.0, 3.0, 1.0, 0.0]
    assert torch.equal(scores[0], scores[1]) and torch.equal(scores[1], scores[2])  # the history is ignored
    assert pop.score_histories(torch.zeros(0, 4, dtype=torch.long)).shape == (0, 5)
