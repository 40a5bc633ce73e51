"""An optimiser for embedding tables with sparse gradients, so a step costs the rows a batch touched, not the whole table.

With ``nn.Embedding(..., sparse=True)`` (``MF(sparse=True)``) the gradient of a table holds only
the rows the batch looked up. Dense Adam refuses such gradients, and would in any case read and
write every row of every table at every step: with a million users that is the whole cost of an
epoch. ``SparseAdam`` below is lazy Adam (what ``torch.optim.SparseAdam`` computes): the
moments of a row advance only when the row has a gradient; parameters with dense gradients get
ordinary Adam. Which optimiser settings accept sparse gradients, in one process and under DDP:

==============================  =========================================================
optimizer                       sparse tables (``model.sparse: true``)
==============================  =========================================================
``sparse_adam``                 yes (lazy Adam on the tables, Adam on the rest)
``sgd``                         yes, with ``momentum: 0`` and ``weight_decay: 0``
``adam``, ``adamw``             no: PyTorch's Adam refuses sparse gradients
any, with ``grad_clip``         no: the norm of a sparse gradient is not defined in PyTorch
``sparse_adam`` + weight_decay  no: use the model's own ``reg`` (it shrinks the rows looked up)
==============================  =========================================================

Dense tables accept every optimiser, in one process and under DDP.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class SparseAdam(torch.optim.Optimizer):
    """Adam that updates only the rows present in a sparse gradient (lazy Adam), and dense parameters as usual."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        if not lr > 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1 or not eps > 0:
            raise ValueError(f"SparseAdam needs lr > 0, betas in [0, 1) and eps > 0, got {lr}, {betas}, {eps}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - the signature of torch.optim.Optimizer.step
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                correction1 = 1 - beta1 ** state["step"]
                correction2 = 1 - beta2 ** state["step"]
                step_size = group["lr"] * math.sqrt(correction2) / correction1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                if p.grad.is_sparse:
                    _lazy_adam_rows(p, m, v, *_summed_rows(p.grad), beta1, beta2, group["eps"], step_size)
                else:
                    grad = p.grad
                    m.mul_(beta1).add_(grad, alpha=1 - beta1)
                    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-step_size)
        return loss


def _lazy_adam_rows(p: torch.Tensor, m: torch.Tensor, v: torch.Tensor, rows: torch.Tensor, values: torch.Tensor,
                    beta1: float, beta2: float, eps: float, step_size: float) -> None:
    """Adam on the distinct ``rows`` of ``p`` with their summed gradient ``values``; no other row is read or written.

    Each table is written with ``index_add_`` of the change (no ``alpha``): on a CPU that is
    twice as fast as ``index_copy_`` of the new rows, and ``index_add_`` with an ``alpha`` is
    several times slower still. m + (1 - beta1)(g - m) is beta1 m + (1 - beta1) g, and the same for v.
    """
    m_rows, v_rows = m.index_select(0, rows), v.index_select(0, rows)
    m_change = torch.sub(values, m_rows).mul_(1 - beta1)
    v_change = torch.mul(values, values).sub_(v_rows).mul_(1 - beta2)
    m.index_add_(0, rows, m_change)
    v.index_add_(0, rows, v_change)
    m_rows.add_(m_change)
    denom = v_rows.add_(v_change).sqrt_().add_(eps)
    p.index_add_(0, rows, m_rows.mul_(-step_size).div_(denom))


def _summed_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of a sparse gradient (ascending) and each row's summed values.

    A gradient whose rows are already distinct and ascending (``cdtl.models.bpr_sparse`` makes
    them so; autograd drops the flag that says it on the way into ``.grad``) is used as it is:
    checking that costs one comparison per row, where coalescing sorts and copies every value.
    """
    if not grad.is_coalesced() and grad.sparse_dim() == 1:
        rows = grad._indices()[0]
        if rows.numel() < 2 or bool((rows[1:] > rows[:-1]).all()):
            return rows, grad._values()
    grad = grad.coalesce()
    return grad.indices()[0], grad.values()


def has_sparse_gradients(model: nn.Module) -> bool:
    """Whether any module of ``model`` produces sparse gradients (an ``nn.Embedding``/``EmbeddingBag`` with sparse=True)."""
    return any(getattr(module, "sparse", False) is True
               for module in model.modules() if isinstance(module, (nn.Embedding, nn.EmbeddingBag)))


def check_sparse_optimizer(model: nn.Module, optimizer: str, *, momentum: float, weight_decay: float,
                           grad_clip: float | None) -> None:
    """Refuse, with the supported choices, an optimiser setting that cannot train ``model``'s sparse tables."""
    if not has_sparse_gradients(model):
        if optimizer == "sparse_adam" and weight_decay:
            raise ValueError("optimizer sparse_adam has no weight_decay; use the model's reg, or optimizer adamw")
        return
    supported = "optimizer: sparse_adam, or sgd with momentum: 0 and weight_decay: 0"
    if optimizer in ("adam", "adamw"):
        raise ValueError(f"{type(model).__name__} has sparse embedding tables (sparse=True): optimizer {optimizer!r} "
                         f"cannot update them (PyTorch's Adam refuses sparse gradients); use {supported}")
    if optimizer == "sgd" and (momentum or weight_decay):
        raise ValueError(f"{type(model).__name__} has sparse embedding tables: sgd needs momentum: 0 and "
                         f"weight_decay: 0 (got momentum={momentum}, weight_decay={weight_decay}); or use sparse_adam")
    if optimizer == "sparse_adam" and weight_decay:
        raise ValueError("optimizer sparse_adam has no weight_decay; regularise sparse tables with the model's reg")
    if grad_clip is not None:
        raise ValueError(f"{type(model).__name__} has sparse embedding tables: grad_clip cannot measure the norm of "
                         "a sparse gradient; set grad_clip: null (or model.sparse: false)")
