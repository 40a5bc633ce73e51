"""ContentKNN: a user's score for an item is its text similarity to the user's history."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from new_items import NEW, group_text, training_pairs

from cdtl.models.content_knn import ContentKNN


def test_content_knn_ranks_the_nearest_text_first():
    vectors = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    knn = ContentKNN(vectors, [np.array([0])], candidates=[1, 2])
    scores = knn.score_all(torch.tensor([0]))
    assert scores.shape == (1, 2) and scores[0, 0] > scores[0, 1]


def test_content_knn_k_picks_the_closest_history_items():
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # candidate 2 equals history item 0, is orthogonal to 1
    history = [np.array([0, 1])]
    one = ContentKNN(vectors, history, candidates=[2], k=1).score_all(torch.tensor([0]))
    every = ContentKNN(vectors, history, candidates=[2], k=None).score_all(torch.tensor([0]))
    assert float(one) == pytest.approx(1.0) and float(every) == pytest.approx(0.5)


def test_content_knn_user_without_history_scores_zero_and_is_flagged():
    knn = ContentKNN(torch.eye(3), [np.array([0]), np.array([], dtype=np.int64)])
    assert knn.has_history.tolist() == [True, False]
    assert torch.all(knn.score_all(torch.tensor([1])) == 0)


def test_content_knn_places_new_items_by_text():
    text = group_text()
    users, items = training_pairs()
    histories = [items[users == u] for u in range(50)]
    knn = ContentKNN(text, histories, candidates=NEW)
    scores = knn.score_all(torch.arange(50))
    right = (scores[:, 0] > scores[:, 1]).long() == (torch.arange(50) % 2 == 0).long()
    assert right.all()
