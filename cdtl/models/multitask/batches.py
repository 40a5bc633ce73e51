"""Mini-batches that mix every task's examples, with fresh negatives for click tasks every epoch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from cdtl.data.ids import interaction_matrix
from cdtl.models.batches import bpr_batches
from cdtl.models.multitask.tasks import Task, check_tasks

# --------------------------------------------------------------------------- batches


class MultiTaskBatches:
    """Shuffled mini-batches mixing every task's examples; click tasks get fresh negatives every epoch.

    Build with ``multitask_batches``. Each batch has ``user``, ``item``, ``task``, ``label``.
    """

    def __init__(self, users: Tensor, items: Tensor, tasks: Tensor, labels: Tensor, batch_size: int,
                 samplers: dict[int, object], n_negatives: int) -> None:
        self.users, self.items, self.tasks, self.labels = users, items, tasks, labels
        self.batch_size, self.samplers, self.n_negatives = int(batch_size), samplers, int(n_negatives)
        n_clicks = sum(int((tasks == t).sum()) for t in samplers)
        self.n = len(users) + n_clicks * self.n_negatives

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __call__(self, epoch: int, generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
        users, items, tasks, labels = [self.users], [self.items], [self.tasks], [self.labels]
        for t, sampler in self.samplers.items():  # K unseen items per click, labelled 0
            here = (self.tasks == t).nonzero(as_tuple=True)[0].repeat(self.n_negatives)
            neg_users = self.users[here]
            users.append(neg_users)
            items.append(sampler.sample_negatives(neg_users, generator))
            tasks.append(self.tasks[here])
            labels.append(torch.zeros(len(here)))
        u, i, t, y = (torch.cat(parts) for parts in (users, items, tasks, labels))
        perm = torch.randperm(len(u), generator=generator)
        for start in range(0, len(u), self.batch_size):
            idx = perm[start:start + self.batch_size]
            yield {"user": u[idx], "item": i[idx], "task": t[idx], "label": y[idx]}


def multitask_batches(
    tasks: Sequence[Task | str],
    examples: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    n_items: Sequence[int],
    batch_size: int,
    n_negatives: int = 1,
) -> MultiTaskBatches:
    """Batches for ``MultiTask.loss`` from each task's training examples.

    ``examples[name] = (users, items, labels)``: the task's training pairs (item indices
    within the task's domain) and their ratings; for a click task ``labels`` is ignored
    (None is fine): every pair is a positive, and each epoch adds ``n_negatives`` uniform
    items per positive that the user has no training pair with, labelled 0. ``tasks`` is
    the model's task list (a batch's ``task`` column indexes it); a task without examples
    is simply never in a batch.
    """
    tasks = check_tasks(tasks, len(n_items))
    names = [t.name for t in tasks]
    unknown = sorted(set(examples) - set(names))
    if unknown:
        raise ValueError(f"examples name unknown task(s) {unknown}; the tasks are {names}")
    if not examples:
        raise ValueError("examples is empty: give at least one task's training pairs")
    if int(n_negatives) < 1:
        raise ValueError(f"n_negatives must be a positive integer, got {n_negatives}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    users, items, task_ids, labels, samplers = [], [], [], [], {}
    for t, task in enumerate(tasks):
        if task.name not in examples:
            continue
        u, i, y = examples[task.name]
        u, i = np.asarray(u, dtype=np.int64), np.asarray(i, dtype=np.int64)
        if u.shape != i.shape or u.ndim != 1 or len(u) == 0:
            raise ValueError(f"examples[{task.name!r}]: users and items must be equal-length, non-empty 1-D arrays")
        n = int(n_items[task.domain])
        if i.min() < 0 or i.max() >= n:
            raise ValueError(f"examples[{task.name!r}]: items must lie in [0, {n}) (domain {task.domain}), "
                             f"got [{i.min()}, {i.max()}]")
        if task.kind == "rating":
            if y is None or np.asarray(y).shape != u.shape or not np.isfinite(np.asarray(y, dtype=float)).all():
                raise ValueError(f"examples[{task.name!r}]: a rating task needs one finite rating per pair")
            y = np.asarray(y, dtype=np.float32)
        else:
            y = np.ones(len(u), dtype=np.float32)
            csr = interaction_matrix(u, i, int(u.max()) + 1, n)
            samplers[t] = bpr_batches(u, i, n, batch_size, csr)  # only its negative sampler is used
        users.append(u), items.append(i), labels.append(y), task_ids.append(np.full(len(u), t))
    return MultiTaskBatches(*(torch.from_numpy(np.concatenate(x)) for x in (users, items, task_ids)),
                            torch.from_numpy(np.concatenate(labels)), batch_size, samplers, n_negatives)


