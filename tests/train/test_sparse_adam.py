"""Lazy Adam matches torch's SparseAdam and leaves untouched rows alone; optimizers unfit for sparse tables are refused."""

from __future__ import annotations

import pytest
import torch

from cdtl.train.sparse_adam import SparseAdam, _summed_rows, check_sparse_optimizer, has_sparse_gradients


def test_sparse_adam_matches_torchs_lazy_adam_and_leaves_untouched_rows_alone() -> None:
    torch.manual_seed(3)
    ours = torch.nn.Parameter(torch.randn(20, 4))
    theirs = torch.nn.Parameter(ours.detach().clone())
    opt_ours, opt_theirs = SparseAdam([ours], lr=0.1), torch.optim.SparseAdam([theirs], lr=0.1)
    before = ours.detach().clone()
    for step in range(5):
        rows = torch.tensor([1, 3, 3, 7, 12]) + (step % 2)  # a repeated row: its gradients are summed
        values = torch.randn(len(rows), 4)
        for p, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            p.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values, p.shape, check_invariants=True)
            opt.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    touched = torch.zeros(20, dtype=torch.bool)
    touched[[1, 2, 3, 4, 7, 8, 12, 13]] = True
    assert torch.equal(ours.detach()[~touched], before[~touched])  # bit for bit
    for moment in ("exp_avg", "exp_avg_sq"):
        state = opt_ours.state[ours][moment]
        assert torch.all(state[~touched] == 0) and torch.all(state[touched].abs().sum(1) > 0)


def test_summed_rows_sums_repeats_and_trusts_only_ascending_distinct_rows() -> None:
    values = torch.arange(8.0).view(4, 2)
    repeated = torch.sparse_coo_tensor(torch.tensor([[5, 1, 5, 0]]), values, (6, 2))
    rows, summed = _summed_rows(repeated)
    assert rows.tolist() == [0, 1, 5] and summed.tolist() == [[6.0, 7.0], [2.0, 3.0], [4.0, 6.0]]
    ascending = torch.sparse_coo_tensor(torch.tensor([[0, 2, 4, 5]]), values, (6, 2))
    rows, same = _summed_rows(ascending)
    assert rows.tolist() == [0, 2, 4, 5] and torch.equal(same, values)


def test_an_optimizer_that_cannot_train_sparse_tables_is_refused_with_the_choices() -> None:
    sparse, dense = torch.nn.Embedding(5, 2, sparse=True), torch.nn.Embedding(5, 2)
    assert has_sparse_gradients(sparse) and not has_sparse_gradients(dense)
    settings = {"momentum": 0.0, "weight_decay": 0.0, "grad_clip": None}
    check_sparse_optimizer(sparse, "sparse_adam", **settings)  # the supported choices pass
    check_sparse_optimizer(sparse, "sgd", **settings)
    check_sparse_optimizer(dense, "adamw", **{**settings, "weight_decay": 0.01, "grad_clip": 1.0})
    refused = [("adam", {}, "'adam' cannot update them"), ("sgd", {"momentum": 0.9}, "sgd needs momentum: 0"),
               ("sparse_adam", {"weight_decay": 0.1}, "sparse_adam has no weight_decay"),
               ("sparse_adam", {"grad_clip": 1.0}, "grad_clip: null")]
    for optimizer, change, message in refused:
        with pytest.raises(ValueError, match=message):
            check_sparse_optimizer(sparse, optimizer, **{**settings, **change})
    with pytest.raises(ValueError, match="sparse_adam has no weight_decay"):
        check_sparse_optimizer(dense, "sparse_adam", **{**settings, "weight_decay": 0.1})
