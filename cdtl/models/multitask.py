"""Multi-task recommenders over shared user and item representations: single-task, shared-bottom, MMoE and PLE.

Every example is a (user, item, task) triple with a label. Tasks live in item *domains*
(0 the source, 1 the target, ...) and are of one of two kinds:

- ``"rating"``: an explicit rating, squared error (e.g. ``source_rating``, ``target_rating``);
- ``"click"``: an interaction (label 1) or a sampled non-interaction (label 0), binary
  cross-entropy on a logit, evaluated by ranking (e.g. ``target_click``).

The input of every architecture is the same shared representation of the pair
(``Inputs``): the user's ID embedding (one table for all domains, so a user is the same
row in every task), the item's ID embedding (one table per domain), the item's frozen
language-model vector through a learned projection, and an embedding of the domain,
concatenated. What differs is what the tasks share after that:

- ``"single"``: nothing at all. Every task has its own inputs, its own MLP and its own
  tower: the baseline that multi-task learning must beat.
- ``"shared_bottom"``: one MLP (the bottom) shared by every task, one small tower per task.
- ``"mmoe"``: K expert MLPs shared by every task; each task mixes them with its own
  softmax gate, a function of the input (Ma et al., KDD 2018).
- ``"ple"``: progressive layered extraction (Tang et al., RecSys 2020): shared experts
  *and* experts that belong to one task; each task's gate mixes its own experts and the
  shared ones; with two levels a shared gate mixes every expert into the input of the
  next level's shared experts.

Loss: ``L = sum_t w_t L_t`` over the tasks present in a batch, each ``L_t`` a mean over
that task's examples (``weighting="fixed"``, weights ``loss_weights``), or the learned
uncertainty weighting of Kendall et al. (CVPR 2018), ``L = sum_t exp(-s_t) L_t + s_t``
with one learned ``s_t`` per task (``weighting="uncertainty"``). A task with no example
in a batch contributes nothing, neither its loss nor its ``s_t``: never a NaN.

``gate_weights(batch)`` gives every task's gate distribution over the experts
(``expert_names``), for MMoE and PLE.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

ARCHS = ("single", "shared_bottom", "mmoe", "ple")
TASK_KINDS = ("rating", "click")
WEIGHTINGS = ("fixed", "uncertainty")
BATCH_KEYS = ("user", "item", "task", "label")


@dataclass(frozen=True)
class Task:
    """One prediction task: its name, the item domain it is about (0, 1, ...) and its kind."""

    name: str
    domain: int
    kind: str  # "rating" (squared error) or "click" (binary cross-entropy on a logit)

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task {self.name!r}: kind must be one of {TASK_KINDS}, got {self.kind!r}")
        if not (isinstance(self.domain, int) and self.domain >= 0):
            raise ValueError(f"task {self.name!r}: domain must be a domain index >= 0, got {self.domain!r}")


# The course's tasks on a two-domain split: domain 0 is the source, domain 1 the target.
KNOWN_TASKS = {
    "source_rating": Task("source_rating", 0, "rating"),
    "target_rating": Task("target_rating", 1, "rating"),
    "source_click": Task("source_click", 0, "click"),
    "target_click": Task("target_click", 1, "click"),
}
DEFAULT_TASKS = (KNOWN_TASKS["source_rating"], KNOWN_TASKS["target_rating"], KNOWN_TASKS["target_click"])


def mlp(sizes: Sequence[int], dropout: float = 0.0, last_activation: bool = True) -> nn.Sequential:
    """Linear layers ``sizes[0] -> sizes[1] -> ...`` with ReLU and dropout between them (and after the last)."""
    layers: list[nn.Module] = []
    for n, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or n < len(sizes) - 2:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- the shared input


class Inputs(nn.Module):
    """The representation of a (user, item, domain) example: four embeddings side by side.

    ``item_text`` is (sum of n_items, text_dim): the frozen language-model vectors of every
    item, domain 0's catalogue first (a buffer, never trained); a linear map projects
    them to ``dim``. Without it the text part is left out.
    """

    def __init__(self, n_users: int, n_items: Sequence[int], dim: int, item_text: Tensor | None = None,
                 init_std: float = 0.01) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(sum(n_items), dim)  # one table, each domain's rows after the previous domain's
        self.domain = nn.Embedding(len(n_items), dim)
        self.register_buffer("offsets", torch.tensor(np.cumsum([0, *n_items[:-1]]), dtype=torch.long))
        for table in (self.user, self.item, self.domain):
            nn.init.normal_(table.weight, std=init_std)
        if item_text is not None:
            self.register_buffer("text", item_text.detach().float().clone())
            self.project = nn.Linear(item_text.shape[1], dim)
        else:
            self.text, self.project = None, None
        self.out_dim = dim * (4 if item_text is not None else 3)

    def forward(self, users: Tensor, items: Tensor, domains: Tensor) -> Tensor:
        rows = items + self.offsets[domains]  # the item's row in the one table of all domains
        parts = [self.user(users), self.item(rows), self.domain(domains)]
        if self.project is not None:
            parts.append(self.project(self.text[rows]))
        return torch.cat(parts, dim=-1)


# --------------------------------------------------------------------------- the four architectures
#
# Each takes (users, items, domains) and returns (B, T, h): every example's representation
# for every task, which the task's tower turns into a prediction, and ``gates`` (B, T, E) or None.


class SingleTask(nn.Module):
    """No sharing: one ``Inputs`` and one MLP per task."""

    def __init__(self, make_inputs, n_tasks: int, hidden: Sequence[int], dropout: float) -> None:
        super().__init__()
        self.inputs = nn.ModuleList([make_inputs() for _ in range(n_tasks)])
        self.bottoms = nn.ModuleList([mlp([inp.out_dim, *hidden], dropout) for inp in self.inputs])
        self.expert_names: list[str] = []

    def forward(self, users: Tensor, items: Tensor, domains: Tensor) -> tuple[Tensor, None]:
        reps = [bottom(inp(users, items, domains)) for inp, bottom in zip(self.inputs, self.bottoms)]
        return torch.stack(reps, dim=1), None


class SharedBottom(nn.Module):
    """One shared input and one shared MLP: every task sees the same representation."""

    def __init__(self, make_inputs, n_tasks: int, hidden: Sequence[int], dropout: float) -> None:
        super().__init__()
        self.inputs = make_inputs()
        self.bottom = mlp([self.inputs.out_dim, *hidden], dropout)
        self.n_tasks = n_tasks
        self.expert_names: list[str] = []

    def forward(self, users: Tensor, items: Tensor, domains: Tensor) -> tuple[Tensor, None]:
        h = self.bottom(self.inputs(users, items, domains))
        return h.unsqueeze(1).expand(-1, self.n_tasks, -1), None


class MMoE(nn.Module):
    """Multi-gate mixture of experts: K shared expert MLPs, one softmax gate per task over them."""

    def __init__(self, make_inputs, n_tasks: int, hidden: Sequence[int], dropout: float, n_experts: int) -> None:
        super().__init__()
        self.inputs = make_inputs()
        self.experts = nn.ModuleList([mlp([self.inputs.out_dim, *hidden], dropout) for _ in range(n_experts)])
        self.gates = nn.Linear(self.inputs.out_dim, n_tasks * n_experts)  # all T gates in one layer
        self.n_tasks, self.n_experts = n_tasks, n_experts
        self.expert_names = [f"expert {k}" for k in range(n_experts)]

    def forward(self, users: Tensor, items: Tensor, domains: Tensor) -> tuple[Tensor, Tensor]:
        x = self.inputs(users, items, domains)
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # (B, K, h)
        gates = self.gates(x).view(-1, self.n_tasks, self.n_experts).softmax(dim=-1)  # (B, T, K)
        return gates @ experts, gates  # (B, T, h): task t's mixture of the experts


class PLELevel(nn.Module):
    """One extraction level of PLE (a customized gate control, CGC).

    Task t's output mixes its ``n_specific`` own experts and the ``n_shared`` shared ones
    with its own gate; unless this is the last level, a shared gate mixes *every* expert
    into the input of the next level's shared experts. The input is (B, T + 1, d): one
    row per task and a last row for the shared experts (at level 1 all rows are ``x``).
    """

    def __init__(self, in_dim: int, n_tasks: int, hidden: Sequence[int], dropout: float,
                 n_specific: int, n_shared: int, last: bool) -> None:
        super().__init__()
        self.n_tasks, self.n_specific, self.n_shared, self.last = n_tasks, n_specific, n_shared, last
        self.specific = nn.ModuleList([
            nn.ModuleList([mlp([in_dim, *hidden], dropout) for _ in range(n_specific)]) for _ in range(n_tasks)])
        self.shared = nn.ModuleList([mlp([in_dim, *hidden], dropout) for _ in range(n_shared)])
        self.task_gates = nn.ModuleList([nn.Linear(in_dim, n_specific + n_shared) for _ in range(n_tasks)])
        self.shared_gate = None if last else nn.Linear(in_dim, n_tasks * n_specific + n_shared)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(outputs (B, T [+ 1], h), gates (B, T, T * n_specific + n_shared) over every expert of this level)."""
        shared = torch.stack([e(x[:, -1]) for e in self.shared], dim=1)  # (B, S, h)
        own = [torch.stack([e(x[:, t]) for e in experts], dim=1) for t, experts in enumerate(self.specific)]
        outputs, gates = [], []
        for t in range(self.n_tasks):
            g = self.task_gates[t](x[:, t]).softmax(dim=-1)  # (B, n_specific + S)
            outputs.append((g.unsqueeze(1) @ torch.cat([own[t], shared], dim=1)).squeeze(1))
            full = x.new_zeros(x.shape[0], self.n_tasks * self.n_specific + self.n_shared)
            full[:, t * self.n_specific:(t + 1) * self.n_specific] = g[:, :self.n_specific]
            full[:, -self.n_shared:] = g[:, self.n_specific:]
            gates.append(full)  # the gate over all experts, zero on other tasks' experts
        if self.shared_gate is not None:
            g = self.shared_gate(x[:, -1]).softmax(dim=-1)
            outputs.append((g.unsqueeze(1) @ torch.cat([*own, shared], dim=1)).squeeze(1))
        return torch.stack(outputs, dim=1), torch.stack(gates, dim=1)


class PLE(nn.Module):
    """Progressive layered extraction: ``levels`` CGC levels of task-specific and shared experts."""

    def __init__(self, make_inputs, n_tasks: int, hidden: Sequence[int], dropout: float,
                 n_specific: int, n_shared: int, levels: int, task_names: Sequence[str]) -> None:
        super().__init__()
        self.inputs = make_inputs()
        dims = [self.inputs.out_dim] + [hidden[-1]] * (levels - 1)
        self.levels = nn.ModuleList([
            PLELevel(d, n_tasks, hidden, dropout, n_specific, n_shared, last=(n == levels - 1))
            for n, d in enumerate(dims)])
        self.n_tasks = n_tasks
        self.expert_names = [f"{t} {k}" for t in task_names for k in range(n_specific)] + [
            f"shared {k}" for k in range(n_shared)]

    def forward(self, users: Tensor, items: Tensor, domains: Tensor) -> tuple[Tensor, Tensor]:
        x = self.inputs(users, items, domains)
        h = x.unsqueeze(1).expand(-1, self.n_tasks + 1, -1)  # every task and the shared experts start from x
        for level in self.levels:
            h, gates = level(h)
        return h, gates  # the last level's gates


# --------------------------------------------------------------------------- the model


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
        self.tasks = _check_tasks(tasks, len(n_items))
        names = [t.name for t in self.tasks]
        _check_arguments(n_users, n_items, arch, dim, hidden, tower, n_experts, n_specific, n_shared, levels,
                         dropout, init_std, weighting, rating_scale)
        if item_text is not None and (item_text.dim() != 2 or item_text.shape[0] != sum(n_items)):
            raise ValueError(f"item_text must be (sum(n_items)={sum(n_items)}, text_dim), got {tuple(item_text.shape)}")
        for label, given in (("loss_weights", loss_weights), ("rating_means", rating_means)):
            unknown = sorted(set(given or {}) - set(names))
            if unknown:
                raise ValueError(f"{label} names unknown task(s) {unknown}; the tasks are {names}")
        if weighting == "uncertainty" and loss_weights:
            raise ValueError("weighting='uncertainty' learns the loss weights: give loss_weights only with 'fixed'")
        weights = [float((loss_weights or {}).get(n, 1.0)) for n in names]
        if any(not (w >= 0 and np.isfinite(w)) for w in weights):
            raise ValueError(f"loss_weights must be finite and >= 0, got {dict(zip(names, weights))}")

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
        self.towers = nn.ModuleList([nn.Sequential(mlp([hidden[-1], *tower], dropout), nn.Linear(
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


def _check_tasks(tasks: Sequence[Task | str], n_domains: int) -> tuple[Task, ...]:
    if isinstance(tasks, (str, Task)) or len(tasks) == 0:
        raise ValueError(f"tasks must be a non-empty list of Task or names of {sorted(KNOWN_TASKS)}, got {tasks!r}")
    out = []
    for task in tasks:
        if isinstance(task, str):
            if task not in KNOWN_TASKS:
                raise ValueError(f"unknown task {task!r}; known tasks: {sorted(KNOWN_TASKS)} (or pass a Task)")
            task = KNOWN_TASKS[task]
        if not isinstance(task, Task):
            raise TypeError(f"tasks must hold Task objects or names, got {type(task).__name__}")
        if task.domain >= n_domains:
            raise ValueError(f"task {task.name!r} is about domain {task.domain}, but n_items has {n_domains} domain(s)")
        out.append(task)
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be distinct, got {names}")
    return tuple(out)


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
    from cdtl.data.ids import interaction_matrix
    from cdtl.models.batches import bpr_batches

    tasks = _check_tasks(tasks, len(n_items))
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


__all__ = ["ARCHS", "DEFAULT_TASKS", "KNOWN_TASKS", "MMoE", "MultiTask", "MultiTaskBatches", "PLE", "PLELevel",
           "SharedBottom", "SingleTask", "Task", "WEIGHTINGS", "multitask_batches", "mlp"]
