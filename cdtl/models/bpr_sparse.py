"""BPR's loss over sparse embedding tables with its gradient written out, so a step reads and writes each looked-up row once.

Through autograd, a BPR step with ``nn.Embedding(sparse=True)`` gathers every row once per
occurrence in the batch, builds a sparse gradient with one row per occurrence (3 x batch rows
for one negative), and the optimiser then sorts and sums those rows (``coalesce``) before it
touches a table. ``bpr_loss`` below computes the same loss and the same gradient, but looks up
each distinct user and item of the batch once (in ascending row order, which is also the
friendliest order for the memory), computes the per-example gradients in closed form, sums
them per distinct row with one ``index_add`` and hands the optimiser a gradient already
coalesced. Everything else (the optimiser, the loop, the model's tables) is unchanged.

For a batch of users u, positives p and K negatives n_k per positive, with
x_k = (g + b_u + c_p + p_u^T q_p) - (g + b_u + c_{n_k} + p_u^T q_{n_k}) and
L = -mean over (u, k) of log sigmoid(x_k) + reg * (squared norms looked up) / B:

    dL/dx_k = -sigmoid(-x_k) / (B K)
    dL/dp_u = sum_k dL/dx_k (q_p - q_{n_k}) + 2 reg p_u / B
    dL/dq_p = (sum_k dL/dx_k) p_u + 2 reg q_p / B,   dL/dq_{n_k} = -dL/dx_k p_u + 2 reg q_{n_k} / B

and the same for the item biases c; g and b_u cancel in x, so their gradient is the penalty's
alone (zero without ``reg``; the user-bias table still receives it, as DDP expects every sparse
table to receive a gradient).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def _sparse_rows(rows: Tensor, values: Tensor, size: torch.Size) -> Tensor:
    """A sparse gradient whose ``rows`` are distinct and ascending: marked coalesced, so the optimiser sorts nothing."""
    return torch.sparse_coo_tensor(rows.unsqueeze(0), values, size, is_coalesced=True, check_invariants=False)


class _SparseBPR(torch.autograd.Function):
    """The BPR loss of (users, items) over four tables; ``items`` is (B, 1 + K): the positive, then K negatives."""

    @staticmethod
    def forward(ctx: Any, users: Tensor, items: Tensor, reg: float, user_emb: Tensor, item_emb: Tensor,
                user_bias: Tensor, item_bias: Tensor, global_bias: Tensor) -> Tensor:
        batch, width = items.shape
        user_rows, user_at = torch.unique(users, return_inverse=True)
        item_rows, item_at = torch.unique(items, return_inverse=True)
        at = item_at.view(-1)  # index_select, not advanced indexing: several times faster on a CPU
        u = user_emb.index_select(0, user_rows).index_select(0, user_at)  # (B, D)
        w = item_emb.index_select(0, item_rows).index_select(0, at).view(batch, width, -1)  # (B, 1 + K, D)
        c = item_bias.view(-1).index_select(0, item_rows).index_select(0, at).view(batch, width)  # (B, 1 + K)
        y = torch.bmm(w, u.unsqueeze(-1)).squeeze(-1) + c
        x = y[:, :1] - y[:, 1:]  # (B, K)
        loss = -F.logsigmoid(x).mean()
        b = None
        if reg:
            b = user_bias.view(-1).index_select(0, user_rows).index_select(0, user_at)
            loss = loss + reg * (u.square().sum() + b.square().sum() + w.square().sum() + c.square().sum()) / batch
        ctx.save_for_backward(u, w, c, b, x, user_rows, user_at, item_rows, item_at)
        ctx.reg = reg
        ctx.shapes = (user_emb.shape, item_emb.shape, user_bias.shape, item_bias.shape)
        return loss

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        u, w, c, b, x, user_rows, user_at, item_rows, item_at = ctx.saved_tensors
        user_shape, item_shape, user_bias_shape, item_bias_shape = ctx.shapes
        batch, k = x.shape
        gx = torch.sigmoid(-x).mul_(-grad_out / (batch * k))  # dL/dx, (B, K)
        gy = torch.cat([gx.sum(1, keepdim=True), gx.neg()], dim=1)  # dL/dy, (B, 1 + K)
        if k == 1:  # dL/dp_u = dL/dx (q_p - q_n): one pass instead of a (B, 1, 2) x (B, 2, D) product
            gu = torch.sub(w[:, 0], w[:, 1]).mul_(gx)  # (B, D)
        else:
            gu = (gy.unsqueeze(-1) * w).sum(1)
        gw = gy.unsqueeze(-1) * u.unsqueeze(1)  # (B, 1 + K, D)
        gc = gy
        scale = 2.0 * ctx.reg * grad_out / batch
        if ctx.reg:
            gu = gu.add_(u * scale)
            gw = gw.add_(w * scale)
            gc = gc + c * scale
        width = item_at.numel()
        user_grad = u.new_zeros((len(user_rows), u.shape[1])).index_add_(0, user_at, gu)
        item_grad = w.new_zeros((len(item_rows), w.shape[-1])).index_add_(0, item_at.view(width), gw.view(width, -1))
        bias_grad = c.new_zeros(len(item_rows)).index_add_(0, item_at.view(width), gc.reshape(width))
        user_bias_grad = u.new_zeros(len(user_rows))
        if ctx.reg:
            user_bias_grad.index_add_(0, user_at, b * scale)
        return (None, None, None,
                _sparse_rows(user_rows, user_grad, user_shape),
                _sparse_rows(item_rows, item_grad, item_shape),
                _sparse_rows(user_rows, user_bias_grad.unsqueeze(-1), user_bias_shape),
                _sparse_rows(item_rows, bias_grad.unsqueeze(-1), item_bias_shape),
                torch.zeros_like(grad_out))


def bpr_loss(model: Any, users: Tensor, items: Tensor) -> Tensor:
    """``MF``'s BPR loss (no dropout) for (B,) users and (B, 1 + K) items, with the hand-written sparse gradient."""
    with torch.autocast(users.device.type, enabled=False):  # the tables' own dtype: the gradients are summed into it
            return _SparseBPR.apply(users, items, float(model.reg), model.user_emb.weight, model.item_emb.weight,
                                model.user_bias.weight, model.item_bias.weight, model.global_bias)
