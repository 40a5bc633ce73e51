"""The transfer kind's model parts: users without a source history get the fallback scorer."""

from __future__ import annotations

import numpy as np
import torch

from cdtl.experiments.common import Popularity
from cdtl.experiments.transfer_models import FallbackScorer


def test_scorer_gives_users_without_source_history_the_fallback():
    class Const:
        def score_all(self, users):
            return torch.ones(len(users), 4)

    pop = Popularity(np.array([1, 1, 1, 2, 2, 3]), 4)  # training counts 0, 3, 2, 1
    scorer = FallbackScorer(Const(), np.array([True, False, True]), pop)
    scores = scorer.score_all(torch.tensor([0, 1, 2]))
    assert torch.equal(scores[1], pop.counts) and torch.equal(scores[0], torch.ones(4))
