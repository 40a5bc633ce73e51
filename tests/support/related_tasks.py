"""Two related rating tasks and small multi-task models, shared by the multi-task model tests."""

from __future__ import annotations

import numpy as np
import torch
from loops import adam_epochs

from cdtl.models.multitask import KNOWN_TASKS, MultiTask

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
