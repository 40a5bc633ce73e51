"""Multi-task models: each architecture learns two related tasks, gates are distributions, an absent task adds nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from loops import adam_epochs

from cdtl.models.multitask import ARCHS, KNOWN_TASKS, MultiTask, Task, multitask_batches

N_USERS, N_ITEMS = 60, [12, 16]
TWO = ["source_rating", "target_rating"]


def _related() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Two rating tasks that share one user trait: half the users like even items, in both domains.

    A user of group g rates an item 4.5 when the item's parity matches g, else 1.5, plus
    noise: what a model learns about a user in one domain holds in the other.
    """
    rng = np.random.default_rng(0)
    group = np.arange(N_USERS) % 2
    out = {}
    for task, n in zip(TWO, N_ITEMS):
        users = np.repeat(np.arange(N_USERS), 8)
        items = rng.integers(0, n, size=len(users))
        ratings = np.where(items % 2 == group[users], 4.5, 1.5) + rng.normal(0, 0.2, len(users))
        out[task] = (users, items, ratings.astype(np.float32))
    return out


def _model(arch: str, tasks=TWO, **kwargs) -> MultiTask:
    torch.manual_seed(0)
    defaults = dict(dim=8, hidden=(16, 8), tower=(8,), n_experts=3, rating_means={t: 3.0 for t in tasks
                                                                                   if KNOWN_TASKS[t].kind == "rating"})
    return MultiTask(N_USERS, N_ITEMS, tasks, arch, **{**defaults, **kwargs})


def _train(model: MultiTask, batches, epochs: int = 40, lr: float = 0.02) -> list[float]:
    return adam_epochs(model, batches, epochs, lr)


def _batch(task_ids, users=None, items=None, labels=None) -> dict[str, torch.Tensor]:
    n = len(task_ids)
    return {"user": torch.arange(n) if users is None else torch.tensor(users),
            "item": torch.arange(n) % 5 if items is None else torch.tensor(items),
            "task": torch.tensor(task_ids), "label": torch.full((n,), 4.0) if labels is None else torch.tensor(labels)}


# --------------------------------------------------------------------------- learning


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_each_architecture_learns_two_related_tasks(arch):
    data = _related()
    model = _model(arch)
    losses = _train(model, multitask_batches(TWO, data, N_ITEMS, batch_size=64))
    assert losses[-1] < 0.3 * losses[0]
    for task, (u, i, r) in data.items():
        pred = model.predict(task, torch.tensor(u), torch.tensor(i)).numpy()
        rmse, trivial = np.sqrt(np.mean((pred - r) ** 2)), np.std(r)
        assert rmse < 0.5 * trivial, f"{arch} {task}: rmse {rmse:.3f} vs the mean's {trivial:.3f}"


@pytest.mark.slow
def test_a_shared_user_transfers_to_a_domain_it_never_saw_there():
    """Users 0-9 have no target rating; a shared-bottom model still ranks their target items right."""
    data = _related()
    u, i, r = data["target_rating"]
    keep = u >= 10
    data["target_rating"] = (u[keep], i[keep], r[keep])
    model = _model("shared_bottom")
    _train(model, multitask_batches(TWO, data, N_ITEMS, batch_size=64), epochs=60)
    cold = torch.arange(10).repeat_interleave(N_ITEMS[1])
    items = torch.arange(N_ITEMS[1]).repeat(10)
    pred = model.predict("target_rating", cold, items).numpy()
    truth = np.where(items.numpy() % 2 == cold.numpy() % 2, 4.5, 1.5)
    assert np.corrcoef(pred, truth)[0, 1] > 0.8


@pytest.mark.slow
def test_click_task_ranks_a_users_liked_items_first():
    """A click task on the target (positives: items of the user's parity) learns alongside a source rating task."""
    data = _related()
    u, i, _ = data["target_rating"]
    liked = i % 2 == u % 2
    data = {"source_rating": data["source_rating"], "target_click": (u[liked], i[liked], None)}
    tasks = ["source_rating", "target_click"]
    model = _model("mmoe", tasks)
    _train(model, multitask_batches(tasks, data, N_ITEMS, batch_size=64, n_negatives=2), epochs=30)
    scores = model.score_all("target_click", torch.arange(N_USERS))
    assert scores.shape == (N_USERS, N_ITEMS[1])
    same = (torch.arange(N_ITEMS[1]) % 2).unsqueeze(0) == (torch.arange(N_USERS) % 2).unsqueeze(1)
    assert (scores[same].mean() - scores[~same].mean()) > 2.0
    assert torch.allclose(scores[3], model.predict("target_click", torch.full((N_ITEMS[1],), 3),
                                                   torch.arange(N_ITEMS[1])))


# --------------------------------------------------------------------------- gates


@pytest.mark.parametrize("arch,levels", [("mmoe", 1), ("ple", 1), ("ple", 2)])
def test_gate_weights_are_distributions_over_the_experts(arch, levels):
    tasks = ["source_rating", "target_rating", "target_click"]
    model = _model(arch, tasks, levels=levels, n_shared=2, n_specific=2)
    gates = model.gate_weights(_batch([0, 1, 2, 1, 0]))
    assert list(gates) == tasks
    n_experts = 3 if arch == "mmoe" else 3 * 2 + 2
    assert model.expert_names and len(model.expert_names) == n_experts
    for t, g in enumerate(gates.values()):
        assert g.shape == (5, n_experts)
        assert torch.allclose(g.sum(1), torch.ones(5), atol=1e-6)
        assert (g >= 0).all()
        if arch == "ple":  # a PLE task never uses another task's own experts
            others = [k for k in range(6) if k // 2 != t]
            assert (g[:, others] == 0).all() and (g[:, [2 * t, 2 * t + 1, 6, 7]] > 0).all()


@pytest.mark.parametrize("arch", ["single", "shared_bottom"])
def test_models_without_gates_say_so(arch):
    with pytest.raises(ValueError, match="no gates"):
        _model(arch).gate_weights(_batch([0, 1]))


def test_single_task_shares_nothing():
    model = _model("single")
    model.task_losses(_batch([0, 0, 0]))["source_rating"].backward()
    touched = {n.split(".")[2] for n, p in model.named_parameters() if n.startswith("body.") and p.grad is not None
               and p.grad.abs().sum() > 0}
    assert touched == {"0"}  # only task 0's inputs and bottom
    assert all(p.grad is None for p in model.towers[1].parameters())


# --------------------------------------------------------------------------- losses and weights


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


# --------------------------------------------------------------------------- batches


def test_batches_mix_tasks_and_draw_unseen_negatives_for_clicks():
    data = _related()
    u, i, _ = data["target_rating"]
    tasks = ["source_rating", "target_click"]
    batches = multitask_batches(tasks, {"source_rating": data["source_rating"], "target_click": (u, i, None)},
                                N_ITEMS, batch_size=100, n_negatives=3)
    epoch = list(batches(0, torch.Generator().manual_seed(0)))
    assert len(epoch) == len(batches)
    task, label = torch.cat([b["task"] for b in epoch]), torch.cat([b["label"] for b in epoch])
    users, items = torch.cat([b["user"] for b in epoch]), torch.cat([b["item"] for b in epoch])
    n = len(u)
    assert int((task == 0).sum()) == len(data["source_rating"][0])
    assert int(((task == 1) & (label == 1)).sum()) == n and int(((task == 1) & (label == 0)).sum()) == 3 * n
    positives = set(zip(u.tolist(), i.tolist()))
    negatives = (task == 1) & (label == 0)
    assert not any((a, b) in positives for a, b in zip(users[negatives].tolist(), items[negatives].tolist()))
    again = list(batches(0, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a["item"], b["item"]) for a, b in zip(epoch, again))


# --------------------------------------------------------------------------- bad input


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
