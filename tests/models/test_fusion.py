"""Softmax fusion on tiny hand-made scorers: weights, masks, temperatures, item alignment, routing, configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdtl.evaluate import evaluate_ranking
from cdtl.models.fusion import Scorer, SoftmaxFusion, align_items, fusion_batches, gate_features, score_scales
from cdtl.train import TrainConfig, fit

ITEMS = np.array([f"i{j}" for j in range(6)], dtype=object)


def table_scorer(name: str, table: torch.Tensor, items=ITEMS, can_serve=None) -> Scorer:
    """A scorer that looks its scores up in a fixed (n_users, n_items) table."""
    serve = np.ones(len(table), bool) if can_serve is None else np.asarray(can_serve)
    return Scorer(name, lambda u: table[u], items, serve)


def three_scorers(n_users: int = 5, seed: int = 0) -> list[Scorer]:
    g = torch.Generator().manual_seed(seed)
    serve_a = np.array([True, False, True, False, True])[:n_users]  # A cannot serve users 1 and 3
    return [table_scorer("a", torch.randn(n_users, 6, generator=g), can_serve=serve_a),
            table_scorer("b", torch.randn(n_users, 6, generator=g)),
            table_scorer("c", torch.randn(n_users, 6, generator=g))]


def features_for(scorers: list[Scorer]) -> torch.Tensor:
    n = len(scorers[0].can_serve)
    serve = torch.stack([torch.as_tensor(s.can_serve) for s in scorers], 1)
    return gate_features(np.arange(n), np.arange(n)[::-1].copy(), serve)


@pytest.mark.parametrize("mode", ["uniform", "global", "user"])
def test_weights_sum_to_one_and_masked_scorers_get_zero(mode):
    scorers = three_scorers()
    fusion = SoftmaxFusion(scorers, ITEMS, mode=mode, features=features_for(scorers) if mode == "user" else None)
    with torch.no_grad():  # move the weights away from uniform so the test is not trivial
        for p in fusion.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    w = fusion.weights(torch.arange(5))
    assert w.shape == (5, 3)
    assert torch.allclose(w.sum(1), torch.ones(5), atol=1e-6)
    assert (w >= 0).all()
    assert w[1, 0] == 0 and w[3, 0] == 0  # scorer a cannot serve users 1 and 3
    assert (w[[0, 2, 4], 0] > 0).all()
    if mode == "uniform":
        assert torch.allclose(w[1], torch.tensor([0.0, 0.5, 0.5]))  # the other two renormalise
        assert torch.allclose(w[0], torch.full((3,), 1 / 3))


def test_gate_output_is_per_user_and_learns_nothing_for_masked_scorers():
    scorers = three_scorers()
    fusion = SoftmaxFusion(scorers, ITEMS, mode="user", features=features_for(scorers), hidden=4)
    with torch.no_grad():
        fusion.gate[2].weight.normal_(generator=torch.Generator().manual_seed(2))
    logits = fusion.weight_logits(torch.tensor([0, 1, 2]))
    assert logits.shape == (3, 3)
    assert torch.isinf(logits[1, 0]) and logits[1, 0] < 0
    w = fusion.weights(torch.arange(5))
    assert not torch.allclose(w[0], w[2])  # different features, different weights
    # a fused distribution sums to one, and a masked scorer's scores do not move it
    p = fusion.log_probs(torch.arange(5)).exp()
    assert torch.allclose(p.sum(1), torch.ones(5), atol=1e-5)
    scorers[0].score_all = lambda u: torch.full((len(u), 6), 1e3)  # absurd scores for everyone
    p2 = fusion.log_probs(torch.tensor([1, 3])).exp()
    assert torch.allclose(p2, p[[1, 3]], atol=1e-6)


def test_user_mode_needs_features_and_other_modes_refuse_them():
    scorers = three_scorers()
    with pytest.raises(ValueError, match="needs features"):
        SoftmaxFusion(scorers, ITEMS, mode="user")
    with pytest.raises(ValueError, match="mode='user' only"):
        SoftmaxFusion(scorers, ITEMS, mode="global", features=features_for(scorers))
    with pytest.raises(ValueError, match="mode must be one of"):
        SoftmaxFusion(scorers, ITEMS, mode="average")


def test_a_user_nobody_can_serve_is_refused():
    scorers = [table_scorer("a", torch.zeros(3, 6), can_serve=[True, False, True])]
    with pytest.raises(ValueError, match=r"1 user\(s\), e.g. \[1\], can be served by no scorer"):
        SoftmaxFusion(scorers, ITEMS, mode="uniform")


def test_temperature_goes_from_one_hot_to_uniform():
    scores = torch.tensor([[3.0, 1.0, 0.5, 0.0, -1.0, 2.0]])
    entropy = []
    for t in (1e-3, 0.3, 1.0, 3.0, 1e3):
        fusion = SoftmaxFusion([table_scorer("s", scores, can_serve=[True])], ITEMS, mode="uniform",
                               temperature=t, learn_temperature=False)
        p = fusion.log_distributions(torch.tensor([0])).exp()[0, 0]
        assert torch.isclose(p.sum(), torch.tensor(1.0))
        entropy.append(float(-(p * p.clamp_min(1e-30).log()).sum()))
        if t == 1e-3:
            assert p[0] > 0.999  # nearly one-hot on the top item
        if t == 1e3:
            assert torch.allclose(p, torch.full((6,), 1 / 6), atol=1e-3)  # nearly uniform
    assert all(a < b for a, b in zip(entropy, entropy[1:]))  # entropy grows with the temperature
    assert entropy[-1] == pytest.approx(np.log(6), abs=1e-4)


def test_excluded_items_get_no_probability_and_no_nan_gradient():
    scorers = three_scorers()
    fusion = SoftmaxFusion(scorers, ITEMS, mode="global")
    exclude = torch.zeros(2, 6, dtype=torch.bool)
    exclude[:, 2] = True
    p = fusion.log_probs(torch.tensor([0, 1]), exclude).exp()
    assert (p[:, 2] < 1e-20).all()
    assert torch.allclose(p.sum(1), torch.ones(2), atol=1e-5)
    loss = fusion.loss({"user": torch.tensor([0, 1]), "pos": torch.tensor([[0, -1], [1, 3]]), "exclude": exclude})
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in fusion.parameters())


def test_item_sets_that_differ_are_refused_with_the_mismatch_named():
    other = np.array(["i0", "i1", "i2", "i3", "i4", "x9"], dtype=object)
    with pytest.raises(ValueError, match=r"scorer 'b'.*1 candidate item\(s\) missing.*\['i5'\].*1 scorer item\(s\) "
                                         r"not among the candidates.*\['x9'\]"):
        SoftmaxFusion([table_scorer("a", torch.zeros(2, 6)), table_scorer("b", torch.zeros(2, 6), items=other)],
                      ITEMS, mode="uniform")
    with pytest.raises(ValueError, match="scorer 'c' ranks 5 items, the candidate list has 6"):
        align_items(table_scorer("c", torch.zeros(2, 5), items=ITEMS[:5]), ITEMS)


def test_same_items_in_another_order_are_aligned_by_id():
    scores = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    order = np.array([5, 3, 1, 0, 2, 4])
    shuffled = table_scorer("s", scores, items=ITEMS[order], can_serve=[True])  # column c scores ITEMS[order[c]]
    assert align_items(table_scorer("t", scores, can_serve=[True]), ITEMS) is None
    fusion = SoftmaxFusion([shuffled], ITEMS, mode="uniform")
    aligned = fusion.scores(torch.tensor([0]))[0, 0]
    expected = torch.empty(6)
    expected[torch.as_tensor(order)] = scores[0]  # ITEMS[order[c]] gets scores[c]
    assert torch.equal(aligned, expected)


def routing_problem(n_per_group: int = 30, n_items: int = 12):
    """Scorer A finds group 0's item and misleads group 1; scorer B the other way round."""
    n = 2 * n_per_group
    rng = np.random.default_rng(0)
    truth = rng.integers(0, n_items, n)
    decoy = (truth + 1 + rng.integers(0, n_items - 1, n)) % n_items  # never the true item
    group = np.arange(n) >= n_per_group
    a, b = torch.zeros(n, n_items), torch.zeros(n, n_items)
    a[np.arange(n), np.where(group, decoy, truth)] = 4.0
    b[np.arange(n), np.where(group, truth, decoy)] = 4.0
    items = np.array([f"i{j}" for j in range(n_items)], dtype=object)
    scorers = [table_scorer("a", a, items), table_scorer("b", b, items)]
    serve = torch.ones(n, 2, dtype=torch.bool)
    features = gate_features(np.full(n, 5), np.where(group, 20, 0), serve)  # the group shows in the target history
    return scorers, items, features, truth, group


def test_per_user_fusion_routes_each_group_to_its_scorer_and_beats_both():
    scorers, items, features, truth, group = routing_problem()
    n = len(truth)
    users = np.arange(n)
    batches = fusion_batches(users, truth, len(items), batch_size=16)
    config = TrainConfig(epochs=60, optimizer="adam", lr=0.05, progress=False, device="cpu")
    relevant = [np.array([t]) for t in truth]

    def hit1(score_all):
        return float(evaluate_ranking(score_all, users, relevant, ks=(1,))["hit@1"].mean())

    results = {}
    for mode in ("global", "user"):
        fusion = SoftmaxFusion(scorers, items, mode=mode, features=features if mode == "user" else None, hidden=8)
        fit(fusion, batches, config)
        results[mode] = fusion
    w = results["user"].weights(torch.as_tensor(users))
    assert (w[~group, 0] > 0.9).all() and (w[group, 1] > 0.9).all()  # each group routed to its scorer
    alone = {s.name: hit1(s.score_all) for s in scorers}
    assert alone == {"a": 0.5, "b": 0.5}
    fused = hit1(results["user"].ranker())
    assert fused == 1.0 > max(alone.values())
    global_w = results["global"].weights(torch.as_tensor(users))
    assert torch.allclose(global_w, global_w[:1].expand_as(global_w))  # one set of weights for everyone
    assert hit1(results["global"].ranker()) < fused


def test_score_scales_are_each_scorers_spread():
    g = torch.Generator().manual_seed(0)
    big, small = 100 * torch.randn(50, 6, generator=g), 0.01 * torch.randn(50, 6, generator=g)
    scales = score_scales([table_scorer("big", big), table_scorer("small", small)], np.arange(50))
    assert scales[0] == pytest.approx(float(big.double().std(unbiased=False)), rel=1e-6)
    assert scales[1] == pytest.approx(float(small.double().std(unbiased=False)), rel=1e-6)


def test_fusion_batches_pad_each_users_items_and_refuse_excluded_positives():
    import scipy.sparse

    batches = fusion_batches(np.array([2, 0, 2, 2]), np.array([1, 3, 4, 0]), n_items=5, batch_size=8)
    (batch,) = list(batches(0, torch.Generator().manual_seed(0)))
    rows = {int(u): sorted(p[p >= 0].tolist()) for u, p in zip(batch["user"], batch["pos"])}
    assert rows == {0: [3], 2: [0, 1, 4]}
    seen = scipy.sparse.csr_matrix((np.ones(1), ([2], [4])), shape=(3, 5))
    with pytest.raises(ValueError, match="held-out .* in exclude_csr"):
        fusion_batches(np.array([2]), np.array([4]), 5, exclude_csr=seen)
