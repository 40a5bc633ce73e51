"""The optimizer and the learning rate of every epoch: warmup, then constant, cosine, step or reduce-on-plateau."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from cdtl.train.config import TrainConfig
from cdtl.train.sparse_adam import SparseAdam, check_sparse_optimizer


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by config.optimizer over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    check_sparse_optimizer(model, config.optimizer, momentum=config.momentum, weight_decay=config.weight_decay,
                           grad_clip=config.grad_clip)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sparse_adam":
        return SparseAdam(params, lr=config.lr)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    """Whether value beats best by more than min_delta (NaN never improves)."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


class LRSchedule:
    """The learning rate of every epoch: a linear warmup, then constant, cosine, step decay or reduce-on-plateau.

    "plateau" multiplies the lr by gamma after max(1, patience // 2) epochs without improvement of the
    monitored metric (or of the training loss when nothing is monitored), so it acts before early stopping.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.plateau_scale = 1.0
        self.plateau_best: float | None = None
        self.plateau_bad_epochs = 0

    def lr(self, epoch: int) -> float:
        c = self.config
        if epoch < c.warmup_epochs:
            return c.lr * (epoch + 1) / (c.warmup_epochs + 1)
        t = epoch - c.warmup_epochs  # epochs since the warmup ended
        if c.scheduler == "cosine":
            return c.lr * 0.5 * (1 + math.cos(math.pi * t / max(1, c.epochs - c.warmup_epochs)))
        if c.scheduler == "step":
            return c.lr * c.gamma ** (t // c.step_size)
        if c.scheduler == "plateau":
            return c.lr * self.plateau_scale
        return c.lr

    def observe(self, value: float, mode: str) -> None:
        """Feed the epoch's metric to "plateau"; other schedules ignore it."""
        if self.config.scheduler != "plateau":
            return
        if improved(value, self.plateau_best, mode, self.config.min_delta):
            self.plateau_best = value
            self.plateau_bad_epochs = 0
            return
        self.plateau_bad_epochs += 1
        if self.plateau_bad_epochs >= max(1, self.config.patience // 2):
            self.plateau_scale *= self.config.gamma
            self.plateau_bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {"plateau_scale": self.plateau_scale, "plateau_best": self.plateau_best,
                "plateau_bad_epochs": self.plateau_bad_epochs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.plateau_scale = float(state["plateau_scale"])
        self.plateau_best = state["plateau_best"]
        self.plateau_bad_epochs = int(state["plateau_bad_epochs"])
