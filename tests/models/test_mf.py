"""Matrix factorisation and its batch makers: every loss learns a planted structure, logits match hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from loops import adam_epochs
from planted import N_ITEMS, N_USERS, NEVER_SEEN, _planted

from cdtl.data.ids import interaction_matrix
from cdtl.models import LOSSES, MF, bpr_batches, rating_batches, softmax_batches


def _fit(model: MF, batches, epochs: int, lr: float = 0.05) -> list[float]:
    """A plain Adam loop; returns the mean loss of each epoch."""
    torch.manual_seed(0)
    return adam_epochs(model, batches, epochs, lr)


def _implicit(data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The liked (rating 5) pairs as implicit feedback."""
    keep = data["ratings"] == 5.0
    return data["users"][keep], data["items"][keep]


def _model_and_batches(loss: str, data: dict[str, np.ndarray]):
    torch.manual_seed(0)
    if loss == "mse":
        model = MF(N_USERS, N_ITEMS, 8, loss="mse", init_std=0.1, global_mean=float(data["ratings"].mean()))
        return model, rating_batches(data["users"], data["items"], data["ratings"], batch_size=64)
    users, items = _implicit(data)
    model = MF(N_USERS, N_ITEMS, 8, loss=loss, init_std=0.1)
    if loss == "bpr":
        csr = interaction_matrix(users, items, N_USERS, N_ITEMS)
        return model, bpr_batches(users, items, N_ITEMS, 64, csr)
    if loss == "softmax":
        return model, softmax_batches(users, items, N_ITEMS, 64)
    return model, softmax_batches(users, items, N_ITEMS, 64, n_negatives=10, sampler="popularity")


# --------------------------------------------------------------------------- learning


@pytest.mark.parametrize("loss", LOSSES)
def test_each_loss_decreases_on_a_planted_problem(loss):
    data = _planted()
    model, batches = _model_and_batches(loss, data)
    history = _fit(model, batches, epochs=40)
    assert all(math.isfinite(h) for h in history)
    if loss == "softmax":  # starts near log(24); each user spreads 7 positives, so the floor is log(7)
        assert history[0] > math.log(N_ITEMS) - 0.1 and history[-1] < math.log(7) + 0.25, history[::10]
    else:
        ratio = 0.7 if loss == "sampled_softmax" else 0.5  # the sampled loss also has a floor: several positives a user
        assert history[-1] < ratio * history[0], history[::10]


@pytest.mark.parametrize("loss", ["bpr", "softmax", "sampled_softmax"])
def test_implicit_losses_rank_seen_and_held_out_items_above_others(loss):
    data = _planted()
    model, batches = _model_and_batches(loss, data)
    _fit(model, batches, epochs=60)
    model.eval()
    scores = model.score_all(torch.arange(N_USERS))
    users, items = _implicit(data)
    # every training positive outscores the item nobody has seen
    assert (scores[users, items] > scores[users, NEVER_SEEN]).all()
    # the held-out item of the user's own group outscores most items of the other group (generalisation)
    wins = []
    for u in range(N_USERS):
        other = np.arange(11, 22) if u % 2 == 0 else np.arange(0, 11)
        wins.append((scores[u, data["held"][u]] > scores[u, other]).float().mean().item())
    assert np.mean(wins) > 0.9, np.mean(wins)


def test_mse_learns_the_ratings_and_predict_clamps():
    data = _planted()
    model, batches = _model_and_batches("mse", data)
    _fit(model, batches, epochs=80)
    u, i = torch.as_tensor(data["users"]), torch.as_tensor(data["items"])
    train_rmse = torch.sqrt(((model.predict(u, i) - torch.as_tensor(data["ratings"])) ** 2).mean()).item()
    assert train_rmse < 0.5
    # predict clamps into the rating scale, score does not
    clamped = MF(2, 2, 2, loss="mse", global_mean=9.0, rating_scale=(1.0, 5.0))
    pair = (torch.tensor([0, 1]), torch.tensor([1, 0]))
    assert clamped.predict(*pair).tolist() == [5.0, 5.0]
    assert (clamped.score(*pair) > 8.0).all()
    clamped.global_bias.data.fill_(-9.0)
    assert clamped.predict(*pair).tolist() == [1.0, 1.0]


# --------------------------------------------------------------------------- hand computations


def _small_model() -> MF:
    model = MF(2, 4, 2, loss="sampled_softmax")
    with torch.no_grad():
        model.user_emb.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        model.item_emb.weight.copy_(torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, -1.0], [0.5, 0.5]]))
        model.user_bias.weight.copy_(torch.tensor([[0.1], [0.2]]))
        model.item_bias.weight.copy_(torch.tensor([[0.0], [0.3], [-0.3], [1.0]]))
        model.global_bias.fill_(0.5)
    return model


def test_scores_by_hand_and_shapes():
    model = _small_model()
    # y = g + b_u + c_i + u.w ; user 1 = (0, 2), item 3 = (.5, .5): 0.5 + 0.2 + 1.0 + 1.0
    assert model.score(torch.tensor([1]), torch.tensor([3])).item() == pytest.approx(2.7)
    everything = model.score_all(torch.tensor([0, 1, 1]))
    assert everything.shape == (3, 4)
    expected = torch.tensor(
        [[1.0 + 0.1 + 0.5, 2.0 + 0.3 + 0.1 + 0.5, 0.0 - 0.3 + 0.1 + 0.5, 0.5 + 1.0 + 0.1 + 0.5],
         [2.0 + 0.0 + 0.2 + 0.5, 0.0 + 0.3 + 0.2 + 0.5, -2.0 - 0.3 + 0.2 + 0.5, 1.0 + 1.0 + 0.2 + 0.5]]
    )
    torch.testing.assert_close(everything, expected[[0, 1, 1]])
    # score broadcasts (B, 1) users against (B, K) items
    grid = model.score(torch.tensor([[0], [1]]), torch.tensor([[0, 1, 2], [3, 2, 1]]))
    torch.testing.assert_close(grid, everything[[0, 1]][torch.tensor([[0], [1]]), torch.tensor([[0, 1, 2], [3, 2, 1]])])
    assert not everything.requires_grad


def test_sampled_softmax_logits_apply_log_q_and_mask_accidental_hits():
    model = _small_model()
    y = model.score_all(torch.tensor([0, 1]))
    users, items, neg = torch.tensor([0, 1]), torch.tensor([1, 3]), torch.tensor([3, 1, 0])
    q = torch.tensor([0.1, 0.2, 0.3, 0.4])
    logits = model.sampled_softmax_logits(users, items, neg, torch.log(q))
    by_hand = torch.tensor(
        [
            [y[0, 1] - math.log(0.2), y[0, 3] - math.log(0.4), float("-inf"), y[0, 0] - math.log(0.1)],
            [y[1, 3] - math.log(0.4), float("-inf"), y[1, 1] - math.log(0.2), y[1, 0] - math.log(0.1)],
        ]
    )
    torch.testing.assert_close(logits, by_hand)
    # the loss is the cross-entropy with column 0
    batch = {"user": users, "item": items, "neg": neg, "log_q": torch.log(q)}
    expected = -torch.log_softmax(by_hand, dim=1)[:, 0].mean()
    torch.testing.assert_close(model.loss(batch), expected)
    # without log_q the sampler is uniform: the constant correction cancels
    uniform = {"user": users, "item": items, "neg": neg, "log_q": torch.full((4,), -math.log(4))}
    torch.testing.assert_close(model.loss(uniform), model.loss({"user": users, "item": items, "neg": neg}))


def test_sampled_softmax_over_every_item_equals_the_full_softmax():
    torch.manual_seed(1)
    model = MF(5, 7, 3, loss="sampled_softmax", init_std=0.5)
    users, items = torch.tensor([0, 1, 4, 2]), torch.tensor([6, 0, 3, 3])
    sampled = model.loss({"user": users, "item": items, "neg": torch.arange(7), "log_q": torch.full((7,), -math.log(7))})
    model.loss_name = "softmax"
    full = model.loss({"user": users, "item": items})
    torch.testing.assert_close(sampled, full)
    by_hand = torch.nn.functional.cross_entropy(model.score_all(users), items)
    torch.testing.assert_close(full.detach(), by_hand)


@pytest.mark.parametrize("sparse", [False, True])
def test_the_full_softmax_normalises_each_distinct_user_once_with_the_per_row_loss_and_gradient(sparse):
    torch.manual_seed(2)
    model = MF(6, 9, 4, loss="softmax", init_std=0.5, reg=0.01, sparse=sparse)
    users, items = torch.tensor([3, 1, 3, 3, 0, 1]), torch.tensor([2, 8, 5, 2, 0, 1])
    loss = model.loss({"user": users, "item": items})
    loss.backward()
    once = [None if p.grad is None else p.grad.to_dense().clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    # one row per example, with every bias in the logits
    per_row = torch.nn.functional.cross_entropy(model._score_shared(users, None), items) + model._penalty(users, items)
    per_row.backward()
    torch.testing.assert_close(loss, per_row)
    for (name, p), a in zip(model.named_parameters(), once):
        grad = p.grad.to_dense() if p.grad is not None else torch.zeros_like(p)
        torch.testing.assert_close(torch.zeros_like(p) if a is None else a, grad, atol=1e-6, rtol=1e-5, msg=name)


def test_with_dropout_the_full_softmax_keeps_one_row_per_example():
    model = MF(6, 9, 4, loss="softmax", dropout=0.5)
    calls = []
    model.user_emb.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    model.loss({"user": torch.tensor([1, 1, 2]), "item": torch.tensor([0, 3, 3])})
    model.eval()
    model.loss({"user": torch.tensor([1, 1, 2]), "item": torch.tensor([0, 3, 3])})
    # training with dropout: every row (and again for the penalty); without it: each distinct user once
    assert calls[0] == 3 and calls[len(calls) // 2] == 2


def test_bpr_loss_by_hand_with_one_and_several_negatives():
    model = _small_model()
    model.loss_name = "bpr"
    y = model.score_all(torch.tensor([0, 1]))
    one = model.loss({"user": torch.tensor([0, 1]), "pos": torch.tensor([1, 0]), "neg": torch.tensor([2, 2])})
    want = -(torch.nn.functional.logsigmoid(y[0, 1] - y[0, 2]) + torch.nn.functional.logsigmoid(y[1, 0] - y[1, 2])) / 2
    torch.testing.assert_close(one, want)
    several = model.loss({"user": torch.tensor([0]), "pos": torch.tensor([1]), "neg": torch.tensor([[2, 3]])})
    want = -(torch.nn.functional.logsigmoid(y[0, 1] - y[0, 2]) + torch.nn.functional.logsigmoid(y[0, 1] - y[0, 3])) / 2
    torch.testing.assert_close(several, want)


def test_reg_adds_the_batch_penalty_and_dropout_spares_inference():
    model = _small_model()
    model.loss_name = "mse"
    batch = {"user": torch.tensor([0, 1]), "item": torch.tensor([1, 3]), "rating": torch.tensor([4.0, 3.0])}
    plain = model.loss(batch)
    model.reg = 0.5
    norms = (1.0 + 4.0) + (0.01 + 0.04) + (4.0 + 0.5) + (0.09 + 1.0)  # users, user biases, items, item biases
    torch.testing.assert_close(model.loss(batch), plain + 0.5 * norms / 2)

    noisy = MF(3, 5, 16, dropout=0.5)
    noisy.train()
    users = torch.tensor([0, 1, 2])
    torch.testing.assert_close(noisy.score_all(users), noisy.score_all(users))
    a = noisy._score(users, torch.tensor([0, 1, 2]))
    b = noisy._score(users, torch.tensor([0, 1, 2]))
    assert not torch.equal(a, b)  # training scores do see dropout


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match="loss must be one of"):
        MF(3, 3, loss="hinge")
    with pytest.raises(ValueError, match="n_items must be a positive integer"):
        MF(3, 0)
    with pytest.raises(ValueError, match="dropout"):
        MF(3, 3, dropout=1.0)
    with pytest.raises(KeyError, match=r"missing \['neg'\]"):
        MF(3, 3, loss="bpr").loss({"user": torch.tensor([0]), "pos": torch.tensor([1])})
