"""The multi-task bodies: MMoE and PLE gates are distributions over their experts, single-task shares nothing."""

from __future__ import annotations

import pytest
import torch
from related_tasks import _batch, _model


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
