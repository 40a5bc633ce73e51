"""The serving parts: the fused score is one inner product, block statistics follow added items, gates and bridge inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdtl.models.transfer import LMBridge
from cdtl.serve.parts import BlockStats, BridgeInput, Gate, query

SLICES = {"mf": slice(0, 3), "pop": slice(3, 4)}


def _matrix(n: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4))


def test_block_statistics_are_each_blocks_mean_and_covariance_and_follow_added_rows():
    x = _matrix()
    stats = BlockStats(x[:15], SLICES)
    mean, cov = stats.current["mf"]
    np.testing.assert_allclose(mean, x[:15, :3].mean(0))
    np.testing.assert_allclose(cov, np.cov(x[:15, :3], rowvar=False))
    stats.add(x[15:])
    mean, cov = stats.current["pop"]
    np.testing.assert_allclose(mean, x[:, 3:].mean(0))
    np.testing.assert_allclose(cov, np.cov(x[:, 3:], rowvar=False).reshape(1, 1))


def test_the_query_ranks_by_the_weighted_sum_of_standardised_scores():
    x = _matrix()
    stats = BlockStats(x, SLICES)
    parts = {"mf": np.array([0.5, -1.0, 2.0]), "pop": np.array([1.0])}
    weights, temperatures = {"mf": 0.7, "pop": 0.3}, {"mf": 2.0, "pop": 0.5}
    q, offset = query(parts, weights, temperatures, stats.current, SLICES, dim=4, standardize=True)
    expected = np.zeros(len(x))
    for name, v in parts.items():
        s = x[:, SLICES[name]] @ v
        expected += weights[name] / temperatures[name] * (s - s.mean()) / s.std(ddof=1)
    np.testing.assert_allclose(x @ q.astype(np.float64) - offset, expected, rtol=1e-5, atol=1e-5)
    q_mf, _ = query(parts, {"mf": 1.0, "pop": 0.0}, {}, stats.current, SLICES, dim=4, standardize=False)
    assert q_mf[3] == 0.0 and np.allclose(q_mf[:3], parts["mf"])  # a scorer with no weight adds nothing


def test_gates_share_the_weight_among_the_scorers_that_can_serve():
    uniform = Gate({"log_temperature": torch.zeros(3)}, {"mode": "uniform", "scorers": ["mf", "lm", "pop"],
                                                         "standardize": True})
    np.testing.assert_allclose(uniform.weights(3, 0, np.array([False, True, True])), [0.0, 0.5, 0.5])
    logits = torch.tensor([2.0, 0.0, -1.0], dtype=torch.float64)
    fixed = Gate({"log_temperature": torch.zeros(3), "logits": logits},
                 {"mode": "global", "scorers": ["mf", "lm", "pop"], "standardize": False})
    w = fixed.weights(3, 5, np.array([True, True, True]))
    np.testing.assert_allclose(w, torch.softmax(logits, 0).numpy())
    assert fixed.weights(3, 5, np.array([False, True, False])).tolist() == [0.0, 1.0, 0.0]


def test_bridge_input_computes_what_the_bridge_computes():
    g = torch.Generator().manual_seed(0)
    bridge = LMBridge(torch.randn(30, 8, generator=g), torch.randn(5, 8, generator=g), dim=4, hidden=16).eval()
    tensors = {"input.matrix": 0.5 * torch.eye(8), "input.offset": torch.full((8,), 0.1)}
    part = BridgeInput(bridge, tensors)
    raw = torch.randn(6, 8, generator=g)
    with torch.no_grad():
        e = raw @ tensors["input.matrix"] + tensors["input.offset"]
        users, item_w, item_c = bridge.user_tower(e), bridge.adaptor(e), bridge.text_bias(e).squeeze(-1)
    np.testing.assert_allclose(part.users(raw.numpy()), users.numpy(), rtol=1e-5, atol=1e-5)
    rows = part.items(raw.numpy(), item_bias=np.ones(6, dtype=np.float32))
    np.testing.assert_allclose(rows[:, :-1], item_w.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rows[:, -1], item_c.numpy() + 1.0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["uniform", "global"])
def test_weights_are_a_distribution(mode):
    gate = Gate({"log_temperature": torch.zeros(2), "logits": torch.tensor([0.3, -0.2])},
                {"mode": mode, "scorers": ["mf", "pop"], "standardize": True})
    w = gate.weights(1, 1, np.array([True, True]))
    assert w.sum() == pytest.approx(1.0) and (w > 0).all()
