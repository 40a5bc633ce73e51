"""Inputs: one embedding table for every domain's items, rows offset by domain, the frozen text part optional."""

from __future__ import annotations

import torch

from cdtl.models.multitask.inputs import Inputs


def test_each_domains_items_have_their_own_rows_in_one_table():
    torch.manual_seed(0)
    inputs = Inputs(n_users=4, n_items=[3, 5], dim=2)
    assert inputs.item.num_embeddings == 8 and inputs.out_dim == 6
    users, items = torch.tensor([1, 1]), torch.tensor([2, 2])
    out = inputs(users, items, torch.tensor([0, 1]))
    assert out.shape == (2, 6)
    assert torch.equal(out[0, 2:4], inputs.item.weight[2]) and torch.equal(out[1, 2:4], inputs.item.weight[3 + 2])
    assert torch.equal(out[:, :2], inputs.user.weight[[1, 1]])
    assert torch.equal(out[1, 4:], inputs.domain.weight[1])


def test_item_text_is_a_frozen_buffer_projected_to_dim():
    text = torch.randn(8, 5)
    inputs = Inputs(n_users=4, n_items=[3, 5], dim=2, item_text=text)
    assert inputs.out_dim == 8
    assert "text" in dict(inputs.named_buffers()) and "text" not in dict(inputs.named_parameters())
    out = inputs(torch.tensor([0]), torch.tensor([1]), torch.tensor([1]))
    torch.testing.assert_close(out[0, 6:], inputs.project(text[3 + 1]))
    text.zero_()  # the caller's tensor is copied, not shared
    assert inputs.text.abs().sum() > 0


def test_without_text_there_is_no_projection():
    inputs = Inputs(n_users=2, n_items=[2], dim=3)
    assert inputs.text is None and inputs.project is None
    assert not any(name.startswith("project") for name, _ in inputs.named_parameters())


def test_repeated_items_are_projected_once_with_the_same_values_and_gradients():
    torch.manual_seed(0)
    text = torch.randn(8, 5)
    inputs = Inputs(n_users=4, n_items=[3, 5], dim=2, item_text=text)
    users, items, domains = torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([4, 1, 4, 0, 1, 4]), torch.tensor([1] * 6)
    out = inputs(users, items, domains)[:, 6:]
    direct = inputs.project(text[items + 3])  # one projection per row
    torch.testing.assert_close(out, direct)
    weights = torch.randn(6, 2)
    (grad_once,) = torch.autograd.grad((out * weights).sum(), inputs.project.weight)
    (grad_rows,) = torch.autograd.grad((direct * weights).sum(), inputs.project.weight)
    torch.testing.assert_close(grad_once, grad_rows)
