"""``MultiTask``: one shared input, an architecture, one tower and one loss per task, with fixed or learned task weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.models.layers import mlp
from cdtl.models.multitask.architectures import PLE, MMoE, SharedBottom, SingleTask
from cdtl.models.multitask.inputs import Inputs
from cdtl.models.multitask.tasks import ARCHS, BATCH_KEYS, DEFAULT_TASKS, WEIGHTINGS, Task, check_tasks

# --------------------------------------------------------------------------- the model


def _task_weights(names: list[str], weighting: str, loss_weights: Mapping[str, float] | None,
                  rating_means: Mapping[str, float] | None) -> list[float]:
    """Each task's fixed loss weight (1 unless given), after checking that every named task exists."""
    for label, given in (("loss_weights", loss_weights), ("rating_means", rating_means)):
        unknown = sorted(set(given or {}) - set(names))
        if unknown:
            raise ValueError(f"{label} names unknown task(s) {unknown}; the tasks are {names}")
    if weighting == "uncertainty" and loss_weights:
        raise ValueError("weighting='uncertainty' learns the loss weights: give loss_weights only with 'fixed'")
    weights = [float((loss_weights or {}).get(n, 1.0)) for n in names]
    if any(not (w >= 0 and np.isfinite(w)) for w in weights):
        raise ValueError(f"loss_weights must be finite and >= 0, got {dict(zip(names, weights))}")
    return weights


class MultiTask(nn.Module):
    """A multi-task recommender: one architecture of ``ARCHS``, one tower per task, a weighted loss.

    - ``n_users``: users (one index for every domain); ``n_items``: items per domain.
    - ``tasks``: ``Task``s (or names of ``KNOWN_TASKS``); a batch's ``task`` column indexes them.
    - ``item_text``: (sum(n_items), text_dim) frozen language-model vectors, domain 0 first, or None.
    - ``dim``: size of each embedding; ``hidden``: the expert (or bottom) MLP's layer sizes;
      ``tower``: hidden sizes of each task's tower (its last layer outputs one number).
    - ``n_experts`` (MMoE), ``n_specific``, ``n_shared``, ``levels`` (PLE).
    - ``weighting``: ``"fixed"`` with ``loss_weights`` {task: w} (missing tasks weigh 1), or
      ``"uncertainty"`` (learned; ``loss_weights`` must then be None).
    - ``rating_means`` {task: mean}: the starting bias of rating towers (the training mean);
      ``rating_scale`` (low, high): ``predict`` clamps ratings into it.

    Batches (``multitask_batches``) have ``user``, ``item`` (index within the task's
    domain), ``task`` (index into ``tasks``) and ``label`` (the rating, or 1/0 for clicks).
    """

    def __init__(
        self,
        n_users: int,
        n_items: Sequence[int],
        tasks: Sequence[Task | str] = DEFAULT_TASKS,
        arch: str = "mmoe",
        *,
        item_text: Tensor | None = None,
        dim: int = 32,
        hidden: Sequence[int] = (64, 32),
        tower: Sequence[int] = (16,),
        n_experts: int = 4,
        n_specific: int = 1,
        n_shared: int = 2,
        levels: int = 1,
        dropout: float = 0.0,
        init_std: float = 0.01,
        weighting: str = "fixed",
        loss_weights: Mapping[str, float] | None = None,
        rating_means: Mapping[str, float] | None = None,
        rating_scale: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.tasks = check_tasks(tasks, len(n_items))
        names = [t.name for t in self.tasks]
        _check_arguments(n_users, n_items, arch, dim, hidden, tower, n_experts, n_specific, n_shared, levels,
                         dropout, init_std, weighting, rating_scale)
        if item_text is not None and (item_text.dim() != 2 or item_text.shape[0] != sum(n_items)):
            raise ValueError(f"item_text must be (sum(n_items)={sum(n_items)}, text_dim), got {tuple(item_text.shape)}")
        weights = _task_weights(names, weighting, loss_weights, rating_means)

        self.arch, self.weighting, self.rating_scale = arch, weighting, rating_scale
        self.n_items = [int(n) for n in n_items]
        T = len(self.tasks)

        def make_inputs() -> Inputs:
            return Inputs(n_users, list(n_items), dim, item_text, init_std)

        if arch == "single":
            self.body: nn.Module = SingleTask(make_inputs, T, hidden, dropout)
        elif arch == "shared_bottom":
            self.body = SharedBottom(make_inputs, T, hidden, dropout)
        elif arch == "mmoe":
            self.body = MMoE(make_inputs, T, hidden, dropout, n_experts)
        else:
            self.body = PLE(make_inputs, T, hidden, dropout, n_specific, n_shared, levels, names)
        self.towers = nn.ModuleList([nn.Sequential(mlp([hidden[-1], *tower], dropout, last_activation=True), nn.Linear(
            ([hidden[-1], *tower])[-1], 1)) for _ in range(T)])
        for t, task in enumerate(self.tasks):  # a rating tower starts at the task's mean rating
            nn.init.constant_(self.towers[t][-1].bias, float((rating_means or {}).get(task.name, 0.0)))
        self.register_buffer("fixed_weights", torch.tensor(weights))
        self.register_buffer("task_domain", torch.tensor([t.domain for t in self.tasks]))
        # s_t = log of task t's "uncertainty": the learned weight is exp(-s_t); 0 means weight 1
        self.log_vars = nn.Parameter(torch.zeros(T)) if weighting == "uncertainty" else None

    # ------------------------------------------------------------------ names and weights

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def expert_names(self) -> list[str]:
        """Names of the experts the gates mix (empty for single-task and shared-bottom)."""
        return list(self.body.expert_names)

    def task_index(self, task: str | int) -> int:
        """The position of a task given by name or index."""
        if isinstance(task, str):
            if task not in self.task_names:
                raise ValueError(f"unknown task {task!r}; the model's tasks are {self.task_names}")
            return self.task_names.index(task)
        if not 0 <= int(task) < len(self.tasks):
            raise ValueError(f"task index must be in [0, {len(self.tasks)}), got {task}")
        return int(task)

    def loss_weights(self) -> dict[str, float]:
        """Each task's current weight: the fixed one, or exp(-s_t) under uncertainty weighting."""
        w = self.fixed_weights if self.log_vars is None else torch.exp(-self.log_vars.detach())
        return {name: float(v) for name, v in zip(self.task_names, w)}

    # ------------------------------------------------------------------ predictions

    def outputs(self, users: Tensor, items: Tensor, tasks: Tensor) -> Tensor:
        """(B,) each example's output for its own task: a rating, or a click logit."""
        reps, _ = self.body(users, items, self.task_domain[tasks])
        out = reps.new_zeros(len(users))
        for t, tower in enumerate(self.towers):  # each tower only on its own task's examples
            here = tasks == t
            if here.any():
                out[here] = tower(reps[here, t]).squeeze(-1).to(out.dtype)
        return out

    @torch.no_grad()
    def predict(self, task: str | int, users: Tensor, items: Tensor) -> Tensor:
        """Task outputs for (user, item) pairs, without dropout: ratings (clamped into ``rating_scale``) or logits."""
        t = self.task_index(task)
        was_training = self.training
        self.eval()
        device = self.task_domain.device
        users, items = users.to(device).reshape(-1), items.to(device).reshape(-1)
        y = self.outputs(users, items, torch.full_like(users, t))
        self.train(was_training)
        if self.tasks[t].kind == "rating" and self.rating_scale is not None:
            y = y.clamp(*self.rating_scale)
        return y

    @torch.no_grad()
    def score_all(self, task: str | int, users: Tensor, chunk: int = 65_536) -> Tensor:
        """(len(users), n_items) outputs of every item of the task's domain, for full ranking.

        The network runs on every (user, item) pair, about ``chunk`` pairs at a time.
        """
        t = self.task_index(task)
        n_items = int(self.n_items[self.tasks[t].domain])
        users = users.reshape(-1).cpu()
        step = max(1, chunk // n_items)
        rows = []
        for start in range(0, len(users), step):
            part = users[start:start + step]
            pairs_u = part.repeat_interleave(n_items)
            pairs_i = torch.arange(n_items).repeat(len(part))
            rows.append(self.predict(t, pairs_u, pairs_i).view(len(part), n_items).float().cpu())
        return torch.cat(rows) if rows else torch.zeros(0, n_items)

    @torch.no_grad()
    def gate_weights(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """{task: (B, E)} each task's gate distribution over ``expert_names`` for the batch's pairs.

        The batch needs ``user``, ``item`` and ``task`` (which sets each pair's domain); every
        row sums to 1. PLE reports its last level, with zeros on the experts a task cannot use.
        """
        if self.arch in ("single", "shared_bottom"):
            raise ValueError(f"arch={self.arch!r} has no gates; gate weights exist for 'mmoe' and 'ple'")
        was_training = self.training
        self.eval()
        device = self.task_domain.device
        users, items, tasks = (batch[k].to(device) for k in ("user", "item", "task"))
        _, gates = self.body(users, items, self.task_domain[tasks])
        self.train(was_training)
        return {name: gates[:, t].cpu() for t, name in enumerate(self.task_names)}

    # ------------------------------------------------------------------ losses

    def task_losses(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """{task: mean loss over the batch's examples of that task}; exactly 0 (no gradient) for an absent task."""
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise KeyError(f"a multi-task batch needs keys {list(BATCH_KEYS)}, missing {missing}; got {sorted(batch)}")
        tasks, labels = batch["task"], batch["label"]
        if len(tasks) and not (0 <= int(tasks.min()) and int(tasks.max()) < len(self.tasks)):
            raise ValueError(f"batch['task'] must index the model's {len(self.tasks)} tasks {self.task_names}, "
                             f"got values in [{int(tasks.min())}, {int(tasks.max())}]")
        out = self.outputs(batch["user"], batch["item"], tasks)
        losses = {}
        for t, task in enumerate(self.tasks):
            here = tasks == t
            y, target = out[here], labels[here].to(out.dtype)
            if task.kind == "rating":
                total = F.mse_loss(y, target, reduction="sum")
            else:
                total = F.binary_cross_entropy_with_logits(y, target, reduction="sum")
            losses[task.name] = total / here.sum().clamp_min(1)  # the sum over no example is 0, not 0 / 0
        return losses

    def loss(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The weighted sum of the task losses of the tasks present in the batch (``cdtl.train`` contract)."""
        losses = torch.stack(list(self.task_losses(batch).values()))
        present = torch.bincount(batch["task"], minlength=len(self.tasks))[: len(self.tasks)] > 0
        if self.log_vars is None:
            return (self.fixed_weights * losses).sum()
        terms = torch.exp(-self.log_vars) * losses + self.log_vars
        return torch.where(present, terms, torch.zeros_like(terms)).sum()  # an absent task leaves s_t alone



def _check_arguments(n_users, n_items, arch, dim, hidden, tower, n_experts, n_specific, n_shared, levels,
                     dropout, init_std, weighting, rating_scale) -> None:
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if isinstance(n_items, int) or len(n_items) == 0:
        raise ValueError(f"n_items must be a list with one item count per domain, got {n_items!r}")
    positive = {"n_users": n_users, "dim": dim, "n_experts": n_experts, "n_specific": n_specific,
                "n_shared": n_shared, "levels": levels, **{f"n_items[{d}]": n for d, n in enumerate(n_items)}}
    for name, value in positive.items():
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if levels > 2:
        raise ValueError(f"levels must be 1 or 2 (PLE extraction levels), got {levels}")
    for name, sizes in (("hidden", hidden), ("tower", tower)):
        if isinstance(sizes, int) or any(not (isinstance(s, int) and s >= 1) for s in sizes):
            raise ValueError(f"{name} must be a list of positive layer sizes, got {sizes!r}")
    if len(hidden) == 0:
        raise ValueError("hidden must have at least one layer size (the expert / bottom output size)")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if not init_std > 0:
        raise ValueError(f"init_std must be > 0, got {init_std}")
    if rating_scale is not None and not rating_scale[0] < rating_scale[1]:
        raise ValueError(f"rating_scale must be (low, high) with low < high, got {rating_scale}")
