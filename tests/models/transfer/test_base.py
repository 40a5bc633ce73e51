"""TargetScorer: score_all, predict and the three losses all come from one user side and one item side."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.models.transfer.base import TargetScorer, frozen

N_USERS, N_ITEMS, DIM = 4, 5, 3


class Table(TargetScorer):
    """User and item vectors and biases read from tables: the smallest TargetScorer."""

    def __init__(self, loss: str = "bpr", known: Tensor | None = None, **kwargs) -> None:
        super().__init__(loss, **kwargs)
        g = torch.Generator().manual_seed(0)
        self.u = nn.Parameter(torch.randn(N_USERS, DIM, generator=g))
        self.ub = nn.Parameter(torch.randn(N_USERS, generator=g))
        self.w = nn.Parameter(torch.randn(N_ITEMS, DIM, generator=g))
        self.wb = nn.Parameter(torch.randn(N_ITEMS, generator=g))
        self.known = known

    def user_side(self, users: Tensor) -> tuple[Tensor, Tensor]:
        return self.u[users], self.ub[users]

    def item_side(self, items: Tensor | None) -> tuple[Tensor, Tensor]:
        return (self.w, self.wb) if items is None else (self.w[items], self.wb[items])

    def trainable_items(self) -> Tensor | None:
        return self.known


def _expected(m: Table) -> Tensor:
    return (m.u @ m.w.T + m.ub[:, None] + m.wb[None, :] + m.global_bias).detach()


def test_score_all_and_predict_agree_with_the_formula():
    model = Table(global_mean=3.5)
    users = torch.tensor([2, 0, 2])
    torch.testing.assert_close(model.score_all(users), _expected(model)[users])
    items = torch.tensor([1, 4, 0])
    torch.testing.assert_close(model.predict(users, items), _expected(model)[users, items])
    clamped = Table(global_mean=3.5, rating_scale=(1.0, 5.0)).predict(users, items)
    assert clamped.min() >= 1.0 and clamped.max() <= 5.0


def test_each_loss_is_the_textbook_formula():
    users, items = torch.tensor([0, 1, 1]), torch.tensor([2, 3, 0])
    mse = Table("mse", global_mean=3.0)
    ratings = torch.tensor([4.0, 2.0, 5.0])
    torch.testing.assert_close(mse.loss({"user": users, "item": items, "rating": ratings}),
                               F.mse_loss(_expected(mse)[users, items], ratings))
    bpr = Table("bpr")
    neg = torch.tensor([1, 1, 4])
    diff = _expected(bpr)[users, items] - _expected(bpr)[users, neg]
    torch.testing.assert_close(bpr.loss({"user": users, "pos": items, "neg": neg}), -F.logsigmoid(diff).mean())
    softmax = Table("softmax")
    torch.testing.assert_close(softmax.loss({"user": users, "item": items}), F.cross_entropy(_expected(softmax)[users], items))


def test_a_batch_represents_each_distinct_user_and_item_once():
    seen: dict[str, list[int]] = {"users": [], "items": []}

    class Counting(Table):
        def user_side(self, users: Tensor) -> tuple[Tensor, Tensor]:
            seen["users"].append(len(users))
            return super().user_side(users)

        def item_side(self, items: Tensor | None) -> tuple[Tensor, Tensor]:
            seen["items"].append(N_ITEMS if items is None else items.numel())
            return super().item_side(items)

    model = Counting("bpr")
    users, pos, neg = torch.tensor([0, 1, 1, 0]), torch.tensor([2, 3, 2, 3]), torch.tensor([[1, 2], [1, 4], [4, 4], [2, 1]])
    loss = model.loss({"user": users, "pos": pos, "neg": neg})
    assert seen == {"users": [2], "items": [4]}  # users {0, 1}; items {1, 2, 3, 4}
    expected = _expected(model)
    y = torch.cat([expected[users, pos].unsqueeze(1), expected[users.unsqueeze(1), neg]], dim=1)
    torch.testing.assert_close(loss, -F.logsigmoid(y[:, :1] - y[:, 1:]).mean())


def test_items_held_out_of_training_are_not_even_negatives_of_the_softmax():
    known = torch.tensor([True, True, False, True, False])
    model = Table("softmax", known=known)
    model.loss({"user": torch.tensor([0, 3]), "item": torch.tensor([1, 3])}).backward()
    assert torch.all(model.wb.grad[~known] == 0) and torch.all(model.wb.grad[known] != 0)


def test_scoring_leaves_the_mode_as_it_was_and_bad_losses_are_refused():
    model = Table().train()
    model.score_all(torch.tensor([0]))
    model.predict(torch.tensor([0]), torch.tensor([1]))
    assert model.training
    with pytest.raises(ValueError, match="loss must be one of"):
        Table("hinge")


def test_frozen_is_a_detached_float32_copy():
    source = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)
    copy = frozen(source)
    assert copy.dtype == torch.float32 and not copy.requires_grad
    copy.zero_()
    assert source.sum().item() == 6.0
