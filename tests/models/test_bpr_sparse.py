"""The fast BPR path of sparse tables learns what autograd would, and lazy Adam touches only the rows a batch looked up."""

from __future__ import annotations

import copy

import pytest
import torch

from cdtl.models.mf import MF
from cdtl.train.sparse_adam import SparseAdam

N_USERS, N_ITEMS, DIM, BATCH = 40, 30, 8, 48


def _model(reg: float, seed: int = 0) -> MF:
    torch.manual_seed(seed)
    model = MF(N_USERS, N_ITEMS, DIM, loss="bpr", reg=reg, sparse=True, init_std=0.3)
    with torch.no_grad():  # non-zero biases, so that their gradients are exercised too
        model.user_bias.weight.normal_()
        model.item_bias.weight.normal_()
    return model


def _batch(k: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    users = torch.randint(N_USERS, (BATCH,), generator=generator)  # repeats: rows summed before the step
    pos = torch.randint(N_ITEMS, (BATCH,), generator=generator)
    neg = torch.randint(N_ITEMS, (BATCH, k), generator=generator)
    return {"user": users, "pos": pos, "neg": neg.squeeze(1) if k == 1 else neg}


def _autograd_loss(model: MF, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    items = torch.cat([batch["pos"].unsqueeze(1), batch["neg"].view(len(batch["user"]), -1)], dim=1)
    return model._bpr_loss_autograd(batch["user"], items)


@pytest.mark.parametrize(("reg", "k"), [(0.0, 1), (0.05, 1), (0.05, 3)])
def test_sparse_bpr_gives_autograds_loss_and_gradient_on_distinct_rows(reg: float, k: int) -> None:
    fast = _model(reg)
    slow = copy.deepcopy(fast)
    batch = _batch(k, torch.Generator().manual_seed(1))
    fast_loss, slow_loss = fast.loss(batch), _autograd_loss(slow, batch)
    assert fast_loss.item() == pytest.approx(slow_loss.item(), rel=1e-6)
    fast_loss.backward()
    slow_loss.backward()
    touched = {"user_emb.weight": batch["user"], "user_bias.weight": batch["user"],
               "item_emb.weight": torch.cat([batch["pos"], batch["neg"].reshape(-1)]),
               "item_bias.weight": torch.cat([batch["pos"], batch["neg"].reshape(-1)])}
    for (name, a), b in zip(fast.named_parameters(), slow.parameters()):
        if name in touched:  # one row per distinct index, ascending: the optimiser sums and sorts nothing
            rows = a.grad._indices()[0]
            assert torch.equal(rows, torch.unique(touched[name])), name
        dense = a.grad.to_dense() if a.grad.is_sparse else a.grad
        expected = b.grad.to_dense() if b.grad.is_sparse else b.grad
        torch.testing.assert_close(dense, expected, rtol=1e-5, atol=1e-7, msg=name)


def test_training_on_the_fast_path_matches_the_autograd_path() -> None:
    """30 lazy-Adam steps, two ways: the parameters agree to float rounding (atol 1e-5 on values of order 0.3)."""
    fast = _model(0.01)
    slow = copy.deepcopy(fast)
    runs = [(fast, lambda b: fast.loss(b)), (slow, lambda b: _autograd_loss(slow, b))]
    for model, loss_of in runs:
        optimizer = SparseAdam(model.parameters(), lr=0.05)
        generator = torch.Generator().manual_seed(2)
        for _ in range(30):
            optimizer.zero_grad(set_to_none=True)
            loss_of(_batch(1, generator)).backward()
            optimizer.step()
    for (name, a), b in zip(fast.named_parameters(), slow.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=name)
    assert not torch.equal(fast.user_emb.weight, _model(0.01).user_emb.weight)  # it did learn


def test_dropout_keeps_the_autograd_path_and_still_learns() -> None:
    model = MF(N_USERS, N_ITEMS, DIM, loss="bpr", sparse=True, dropout=0.3)
    batch = _batch(1, torch.Generator().manual_seed(4))
    model.train()
    model.loss(batch).backward()
    assert model.user_emb.weight.grad.is_sparse
    assert len(model.user_emb.weight.grad._indices()[0]) == BATCH  # one row per occurrence: autograd's own
