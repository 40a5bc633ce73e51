"""User vectors from histories: poolings match hand computations, attention ignores padding, empty histories are caught."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import torch

from cdtl.encoders.users import (
    AttentionPool,
    history_csr,
    mean_pool,
    profile_text,
    recency_pool,
    recency_weights,
)

ITEM_EMB = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [-1.0, 3.0]])
HISTORIES = [np.array([0, 1]), np.array([2]), np.array([3, 0, 2])]


def test_mean_pool_equals_hand_computation_for_every_history_form() -> None:
    expected = torch.tensor([[0.5, 0.5], [2.0, 2.0], [2.0 / 3, 5.0 / 3]])
    indptr, indices = np.array([0, 2, 3, 6]), np.array([0, 1, 2, 3, 0, 2])
    csr = scipy.sparse.csr_matrix((np.ones(6), indices, indptr), shape=(3, 4))
    for histories in (HISTORIES, (indptr, indices), csr, [h.tolist() for h in HISTORIES]):
        torch.testing.assert_close(mean_pool(ITEM_EMB, histories), expected)


def test_mean_pool_counts_a_repeated_item_each_time() -> None:
    out = mean_pool(ITEM_EMB, [np.array([0, 0, 1])])
    torch.testing.assert_close(out, torch.tensor([[2.0 / 3, 1.0 / 3]]))


def test_recency_weights_halve_every_half_life_and_sum_to_one() -> None:
    w = recency_weights(HISTORIES, half_life=1.0)
    # user 0: [older, newest] -> [1/3, 2/3]; user 1: [1]; user 2: ranks 2, 1, 0 -> [1, 2, 4] / 7
    torch.testing.assert_close(w, torch.tensor([1 / 3, 2 / 3, 1.0, 1 / 7, 2 / 7, 4 / 7], dtype=torch.float64))
    w2 = recency_weights(HISTORIES, half_life=2.0)
    assert w2[4] / w2[3] == pytest.approx(2 ** 0.5)
    out = recency_pool(ITEM_EMB, HISTORIES, half_life=1.0)
    torch.testing.assert_close(out[2], (ITEM_EMB[3] + 2 * ITEM_EMB[0] + 4 * ITEM_EMB[2]) / 7)
    # a very long half-life is the mean
    torch.testing.assert_close(recency_pool(ITEM_EMB, HISTORIES, half_life=1e9), mean_pool(ITEM_EMB, HISTORIES))


def test_timestamps_order_the_history_for_recency() -> None:
    # user 2's items given out of order: by time they are 2 (oldest), 3, 0 (newest)
    ts = [np.array([5, 9]), np.array([1]), np.array([20, 30, 10])]
    indptr, indices = history_csr(HISTORIES, timestamps=ts)
    assert indices[indptr[2]:].tolist() == [2, 3, 0]
    out = recency_pool(ITEM_EMB, HISTORIES, half_life=1.0, timestamps=np.concatenate(ts))
    torch.testing.assert_close(out[2], (ITEM_EMB[2] + 2 * ITEM_EMB[3] + 4 * ITEM_EMB[0]) / 7)


def test_empty_history_raises_naming_how_many_unless_zeros() -> None:
    histories = [np.array([0]), np.array([], dtype=np.int64), np.array([], dtype=np.int64)]
    with pytest.raises(ValueError, match="2 of 3 users have an empty history"):
        mean_pool(ITEM_EMB, histories)
    with pytest.raises(ValueError, match="2 of 3 users"):
        recency_pool(ITEM_EMB, histories, half_life=2.0)
    out = mean_pool(ITEM_EMB, histories, empty="zeros")
    assert out[1:].abs().sum() == 0 and torch.equal(out[0], ITEM_EMB[0])
    assert recency_pool(ITEM_EMB, histories, 2.0, empty="zeros")[1:].abs().sum() == 0
    pool = AttentionPool(2)
    with pytest.raises(ValueError, match="2 of 3 users have an empty history"):
        pool.pool(ITEM_EMB, histories)
    zeros = AttentionPool(2, empty="zeros").pool(ITEM_EMB, histories)
    assert torch.isfinite(zeros).all() and zeros[1:].abs().sum() == 0


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="expected \\[0, 4\\)"):
        mean_pool(ITEM_EMB, [np.array([0, 7])])
    with pytest.raises(ValueError, match="indptr must start at 0"):
        mean_pool(ITEM_EMB, (np.array([0, 5]), np.array([0, 1])))
    with pytest.raises(ValueError, match="half_life must be a positive"):
        recency_pool(ITEM_EMB, HISTORIES, half_life=0)
    with pytest.raises(ValueError, match="item_text must be a 2-D"):
        mean_pool(ITEM_EMB[0], HISTORIES)
    with pytest.raises(ValueError, match="timestamps must give one value per interaction"):
        recency_pool(ITEM_EMB, HISTORIES, 1.0, timestamps=np.arange(3))
    with pytest.raises(ValueError, match="empty must be one of"):
        mean_pool(ITEM_EMB, HISTORIES, empty="skip")


def test_attention_pool_starts_as_the_mean_and_ignores_padding() -> None:
    torch.manual_seed(0)
    pool = AttentionPool(8)
    x = torch.randn(4, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    mean = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    torch.testing.assert_close(pool(x, mask), mean)  # the query starts at zero: uniform weights

    with torch.no_grad():
        pool.query.normal_()  # now the weights are far from uniform
    out = pool(x, mask)
    assert not torch.allclose(out, mean, atol=1e-3)
    weights = pool.weights(x, mask)
    torch.testing.assert_close(weights.sum(1), torch.ones(4))
    assert (weights[~mask] == 0).all()
    # appending padding (with garbage embeddings), or changing what sits under padding, changes nothing
    garbage = torch.randn(4, 3, 8) * 100
    padded_out = pool(torch.cat([x, garbage], 1), torch.cat([mask, torch.zeros(4, 3, dtype=torch.bool)], 1))
    torch.testing.assert_close(padded_out, out)
    scrambled = torch.where(mask.unsqueeze(-1), x, torch.randn_like(x) * 100)
    torch.testing.assert_close(pool(scrambled, mask), out)


def test_attention_pool_learns_to_pick_the_informative_item() -> None:
    """Each history holds one 'signal' item (first coordinate 1) among noise; the target is that item."""
    torch.manual_seed(0)
    n, length, d = 256, 6, 4
    x = torch.randn(n, length, d)
    x[:, :, 0] = 0.0
    where = torch.randint(length, (n,))
    x[torch.arange(n), where, 0] = 1.0
    target = x[torch.arange(n), where]
    pool = AttentionPool(d)
    mask = torch.ones(n, length, dtype=torch.bool)
    opt = torch.optim.Adam(pool.parameters(), lr=0.1)
    first = None
    for _ in range(30):
        loss = ((pool(x, mask) - target) ** 2).sum(1).mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first
    assert pool.weights(x, mask)[torch.arange(n), where].mean() > 0.9  # it attends to the signal item


def test_pool_method_matches_forward_and_gradients_reach_the_embeddings() -> None:
    pool = AttentionPool(2)
    emb = ITEM_EMB.clone().requires_grad_(True)
    out = pool.pool(emb, HISTORIES)
    torch.testing.assert_close(out, mean_pool(ITEM_EMB, HISTORIES))
    out.sum().backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0


def test_profile_text_lists_the_most_recent_titles_first() -> None:
    titles = ["Alien (1979)", "Heat (1995)", "  ", "Up (2009)"]
    assert profile_text(titles) == "Watched: Up (2009); Heat (1995); Alien (1979)"
    assert profile_text(titles, max_items=2) == "Watched: Up (2009); Heat (1995)"
    assert profile_text(titles, max_items=2, most_recent_first=False) == "Watched: Heat (1995); Up (2009)"
    assert profile_text(["Dune"], prefix="Read: ") == "Read: Dune"
    with pytest.raises(ValueError, match="no non-blank title"):
        profile_text(["", " "])
    with pytest.raises(TypeError, match="position 1"):
        profile_text(["Dune", float("nan")])
    with pytest.raises(TypeError, match="wrap it in a list"):
        profile_text("Dune")
    with pytest.raises(ValueError, match="max_items must be a positive integer"):
        profile_text(["Dune"], max_items=0)
