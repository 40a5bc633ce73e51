"""What tasks share after the input: nothing (single-task), a bottom MLP, MMoE's gated experts or PLE's levels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cdtl.models.layers import mlp

# --------------------------------------------------------------------------- the four architectures
#
# Each takes (users, items, domains) and returns (B, T, h): every example's representation
# for every task, which the task's tower turns into a prediction, and ``gates`` (B, T, E) or None.


class SingleTask(nn.Module):
    """No sharing: one ``Inputs`` and one MLP per task."""

    def __init__(self, make_inputs, n_tasks: int, hidden: Sequence[int], dropout: float) -> None:
        super().__init__()
        self.inputs = nn.ModuleList([make_inputs() for _ in range(n_tasks)])
        self.bottoms = nn.ModuleList([mlp([inp.out_dim, *hidden], dropout, last_activation=True) for inp in self.inputs])
        self.expert_names: list[str] = []

    def forward(self, users: Tensor, items: Tensor, domains: Tensor) -> tuple[Tensor, None]:
        reps = [bottom(inp(users, items, domains)) for inp, bottom in zip(self.inputs, self.bottoms)]
        return torch.stack(reps, dim=1), None


class SharedBottom(nn.Module):
    """One shared input and one shared MLP: every task sees the same representation."""

    def __init__(self, make_inputs, n_tasks: int, hidden: Sequence[int], dropout: float) -> None:
        super().__init__()
        self.inputs = make_inputs()
        self.bottom = mlp([self.inputs.out_dim, *hidden], dropout, last_activation=True)
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
        self.experts = nn.ModuleList([mlp([self.inputs.out_dim, *hidden], dropout, last_activation=True)
                                      for _ in range(n_experts)])
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
            nn.ModuleList([mlp([in_dim, *hidden], dropout, last_activation=True) for _ in range(n_specific)])
            for _ in range(n_tasks)])
        self.shared = nn.ModuleList([mlp([in_dim, *hidden], dropout, last_activation=True) for _ in range(n_shared)])
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
