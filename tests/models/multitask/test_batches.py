"""multitask_batches: every task's rows in one shuffled epoch, unseen negatives drawn for click tasks."""

from __future__ import annotations

import torch
from related_tasks import N_ITEMS, _related

from cdtl.models.multitask import multitask_batches


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
