"""MultiTask: per-task losses and their weights, an absent task adds nothing, bad arguments and batches refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from related_tasks import N_ITEMS, N_USERS, TWO, _batch, _model, _related, _train

from cdtl.models.multitask import ARCHS, MultiTask, Task, multitask_batches


@pytest.mark.parametrize("weighting", ["fixed", "uncertainty"])
@pytest.mark.parametrize("arch", ARCHS)
def test_a_task_absent_from_a_batch_adds_no_loss_and_no_gradient(arch, weighting):
    model = _model(arch, weighting=weighting)
    batch = _batch([0, 0, 0, 0])  # only source_rating
    losses = model.task_losses(batch)
    assert losses["target_rating"].item() == 0.0
    loss = model.loss(batch)
    assert torch.isfinite(loss)
    loss.backward()
    for p in model.towers[1].parameters():
        assert p.grad is None or float(p.grad.abs().sum()) == 0.0
    if weighting == "uncertainty":
        assert float(model.log_vars.grad[1]) == 0.0 and float(model.log_vars.grad[0]) != 0.0
        assert loss.item() == pytest.approx(float(torch.exp(-model.log_vars[0]).item() * losses["source_rating"].item()
                                                  + model.log_vars[0].item()))


def test_an_all_empty_batch_gives_zero_not_nan():
    model = _model("mmoe", weighting="uncertainty")
    empty = {k: torch.zeros(0, dtype=torch.long) for k in ("user", "item", "task")} | {"label": torch.zeros(0)}
    loss = model.loss(empty)
    assert loss.item() == 0.0


def test_fixed_weights_scale_each_task():
    model = _model("shared_bottom", loss_weights={"source_rating": 2.0, "target_rating": 0.0})
    batch = _batch([0, 1, 0, 1])
    losses = model.task_losses(batch)
    assert model.loss(batch).item() == pytest.approx(2.0 * losses["source_rating"].item())
    assert model.loss_weights() == {"source_rating": 2.0, "target_rating": 0.0}


def test_uncertainty_weights_are_learned():
    data = _related()
    model = _model("mmoe", weighting="uncertainty")
    assert model.loss_weights() == {"source_rating": 1.0, "target_rating": 1.0}
    _train(model, multitask_batches(TWO, data, N_ITEMS, batch_size=64), epochs=10)
    weights = model.loss_weights()
    assert all(abs(w - 1.0) > 0.1 for w in weights.values())
    assert weights["source_rating"] == pytest.approx(torch.exp(-model.log_vars[0]).item())


@pytest.mark.parametrize("kwargs,match", [
    ({"arch": "moe"}, "arch must be one of"),
    ({"tasks": ["source_rating", "nope"]}, "unknown task 'nope'"),
    ({"tasks": []}, "non-empty"),
    ({"tasks": [Task("a", 2, "rating")]}, "domain 2"),
    ({"weighting": "learned"}, "weighting must be one of"),
    ({"weighting": "uncertainty", "loss_weights": {"source_rating": 2.0}}, "only with 'fixed'"),
    ({"loss_weights": {"target_click": 2.0}}, "unknown task"),
    ({"loss_weights": {"source_rating": -1.0}}, "finite and >= 0"),
    ({"levels": 3}, "levels must be 1 or 2"),
    ({"n_experts": 0}, "n_experts must be a positive integer"),
    ({"hidden": ()}, "at least one layer"),
    ({"dropout": 1.0}, "dropout"),
    ({"item_text": torch.zeros(5, 4)}, r"item_text must be \(sum\(n_items\)=28"),
])
def test_bad_arguments_get_clear_errors(kwargs, match):
    arch = kwargs.pop("arch", "mmoe")
    tasks = kwargs.pop("tasks", TWO)
    with pytest.raises(ValueError, match=match):
        MultiTask(N_USERS, N_ITEMS, tasks, arch, **kwargs)
    with pytest.raises(ValueError, match="kind must be one of"):
        Task("x", 0, "ranking")


def test_bad_batches_get_clear_errors():
    model = _model("mmoe")
    with pytest.raises(KeyError, match="missing"):
        model.loss({"user": torch.zeros(2, dtype=torch.long)})
    with pytest.raises(ValueError, match="must index the model's 2 tasks"):
        model.loss(_batch([0, 2]))
    with pytest.raises(ValueError, match="unknown task"):
        model.predict("target_click", torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="items must lie in"):
        multitask_batches(TWO, {"source_rating": (np.array([0]), np.array([12]), np.array([3.0]))}, N_ITEMS, 8)
    with pytest.raises(ValueError, match="one finite rating per pair"):
        multitask_batches(TWO, {"source_rating": (np.array([0]), np.array([1]), None)}, N_ITEMS, 8)
    with pytest.raises(ValueError, match="unknown task"):
        multitask_batches(TWO, {"target_click": (np.array([0]), np.array([1]), None)}, N_ITEMS, 8)
