"""Coverage, novelty and popular share against values computed by hand; top_k is the ranking evaluate_ranking scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cdtl.beyond_accuracy import beyond_accuracy, coverage, item_counts, novelty, popular_items, popular_share
from cdtl.data.ids import interaction_matrix
from cdtl.evaluate import top_k

COUNTS = np.array([4.0, 2.0, 1.0, 1.0, 0.0])  # 8 training interactions over 5 items


def test_item_counts_from_training_items():
    assert item_counts(np.array([0, 0, 1, 0, 2, 3, 1, 0]), 5).tolist() == COUNTS.tolist()
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        item_counts(np.array([5]), 5)


def test_coverage_counts_distinct_recommended_items():
    assert coverage(np.array([[0, 1], [0, 2], [3, 4]]), 5) == 1.0
    assert coverage(torch.tensor([[0, 1], [1, 0]]), 5) == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="n_items"):
        coverage(np.array([[0, 7]]), 5)


def test_novelty_is_mean_self_information():
    top = np.array([[0, 1], [2, 3]])
    # shares 4/8, 2/8, 1/8, 1/8 -> 1, 2, 3, 3 bits
    np.testing.assert_allclose(novelty(top, COUNTS, smoothing=0.0), [1.5, 3.0])
    # add-one: (c + 1) / (8 + 5)
    smoothed = novelty(np.array([[0, 4]]), COUNTS)
    assert smoothed[0] == pytest.approx((math.log2(13 / 5) + math.log2(13)) / 2)
    with pytest.raises(ValueError, match="no training interaction"):
        novelty(np.array([[0, 4]]), COUNTS, smoothing=0.0)


def test_popular_share_reads_the_head_of_the_catalogue():
    assert popular_items(COUNTS, 0.4).tolist() == [0, 1]  # ceil(0.4 * 5) = 2 items
    assert popular_items(np.array([1.0, 1.0, 1.0, 0.0]), 0.5).tolist() == [0, 1]  # ties: lower index first
    np.testing.assert_allclose(popular_share(np.array([[0, 1], [0, 2], [3, 4]]), COUNTS, 0.4), [1.0, 0.5, 0.0])
    out = beyond_accuracy(np.array([[0, 1], [0, 2], [3, 4]]), COUNTS, top_fraction=0.2)  # head: item 0
    assert out["coverage"] == 1.0 and out["popular_share"].tolist() == [0.5, 0.5, 0.0]
    with pytest.raises(ValueError, match="top_fraction"):
        popular_share(np.array([[0]]), COUNTS, 0.0)
    with pytest.raises(TypeError, match="integer"):
        popular_share(np.array([[0.5]]), COUNTS)


def test_top_k_is_the_ranking_with_exclusions():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6], [0.1, 0.2, 0.3, 0.4]])
    train = interaction_matrix(np.array([0]), np.array([0]), 2, 4)  # user 0 trained on item 0
    top = top_k(lambda u: scores[u], np.array([0, 1]), 2, train, batch_size=1)
    assert top.tolist() == [[1, 2], [3, 2]]
