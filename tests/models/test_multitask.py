"""Every multi-task architecture learns: two related tasks, transfer to an unseen domain, a click task that ranks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from related_tasks import N_ITEMS, N_USERS, TWO, _model, _related, _train

from cdtl.models.multitask import ARCHS, multitask_batches


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
