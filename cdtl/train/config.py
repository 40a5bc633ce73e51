"""The training loop's settings, checked when they are made, and what a run of the loop reports."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cdtl.configfile import preview

OPTIMIZERS = ("adamw", "adam", "sgd", "sparse_adam")
SCHEDULERS = (None, "cosine", "step", "plateau")
MODES = ("max", "min")

# Keys every history row has; a validate() function must not return these.
HISTORY_KEYS = ("epoch", "train_loss", "lr", "seconds")


@dataclass
class TrainConfig:
    """Every knob of the training loop; the defaults suit the course's small models."""

    epochs: int = 20
    optimizer: str = "adamw"  # "adamw" | "adam" | "sgd" | "sparse_adam" (for sparse embedding tables)
    lr: float = 1e-3
    weight_decay: float = 0.0  # L2 for adam/sgd, decoupled weight decay for adamw
    momentum: float = 0.9  # sgd only
    scheduler: str | None = None  # None | "cosine" | "step" | "plateau"
    step_size: int = 10  # "step": multiply the lr by gamma every step_size epochs
    gamma: float = 0.5  # "step" decay factor, and the factor "plateau" cuts the lr by
    warmup_epochs: int = 0  # linear warmup before the schedule starts
    monitor: str | None = None  # validation metric to early-stop on, e.g. "ndcg@10" or "rmse"
    mode: str = "max"  # "max": higher monitor is better; "min": lower is better
    patience: int = 5  # epochs without improvement before stopping
    min_delta: float = 0.0  # the smallest change that counts as an improvement
    grad_clip: float | None = None  # clip the gradient norm to this value
    seed: int = 0
    device: str = "auto"  # "auto" -> cuda, then mps, then cpu
    amp: bool = True  # mixed precision on CUDA only (bf16 if supported, else fp16 with a GradScaler)
    progress: bool = True  # a tqdm bar per epoch (one summary line in a built book: cdtl.progress)
    log_dir: str | None = None  # write TensorBoard logs here (needs the tensorboard package)
    checkpoint_dir: str | None = None  # safetensors checkpoints after every epoch
    resume: bool = False  # continue from the last checkpoint in checkpoint_dir
    divergence: float | None = 1e4  # stop once a step's loss exceeds this times max(|first step's loss|, 1); None: never

    def __post_init__(self) -> None:
        _check_types(self)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid choices: {', '.join(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(
                f"unknown scheduler {self.scheduler!r}; valid choices: None, {', '.join(SCHEDULERS[1:])}"
            )
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; valid choices: {', '.join(MODES)}")
        positive = {"epochs": self.epochs, "lr": self.lr, "step_size": self.step_size, "gamma": self.gamma,
                    "patience": self.patience}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        not_negative = {"weight_decay": self.weight_decay, "momentum": self.momentum,
                        "warmup_epochs": self.warmup_epochs, "min_delta": self.min_delta}
        for name, value in not_negative.items():
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.divergence is not None and not (self.divergence > 1 and math.isfinite(self.divergence)):
            raise ValueError(f"divergence must be a finite factor > 1 (e.g. 1e4) or None, got {self.divergence}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir: the folder to resume from")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """A config from a plain dict (e.g. a YAML file), refusing keys it does not know."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; valid keys: {', '.join(valid)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain, JSON-ready dict."""
        return asdict(self)


def defaults() -> dict[str, Any]:
    """Every TrainConfig key with its default, as a plain dict (the ``train`` section of an experiment)."""
    return {f.name: f.default for f in fields(TrainConfig)}


_INT_FIELDS = ("epochs", "step_size", "warmup_epochs", "patience", "seed")
_FLOAT_FIELDS = ("lr", "weight_decay", "momentum", "gamma", "min_delta", "grad_clip", "divergence")
_BOOL_FIELDS = ("amp", "progress", "resume")
_STR_FIELDS = ("optimizer", "scheduler", "monitor", "mode", "device", "log_dir", "checkpoint_dir")
_OPTIONAL_FIELDS = ("scheduler", "monitor", "grad_clip", "log_dir", "checkpoint_dir", "divergence")


def _check_types(config: TrainConfig) -> None:
    """Catch config values of the wrong type early, e.g. lr: 1e-3 that YAML reads as the string '1e-3'."""
    for name in _INT_FIELDS + _FLOAT_FIELDS + _BOOL_FIELDS + _STR_FIELDS:
        value = getattr(config, name)
        if value is None and name in _OPTIONAL_FIELDS:
            continue
        if name in _INT_FIELDS:
            ok = isinstance(value, int) and not isinstance(value, bool)
            expected = "an integer"
        elif name in _FLOAT_FIELDS:
            ok = isinstance(value, float) or isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**1023
            expected = "a number (in YAML write 1.0e-3, not 1e-3)"
            if ok:
                setattr(config, name, float(value))
        elif name in _BOOL_FIELDS:
            ok = isinstance(value, bool)
            expected = "true or false"
        else:
            ok = isinstance(value, (str, os.PathLike)) if name.endswith("_dir") else isinstance(value, str)
            expected = "a string"
            if ok and name.endswith("_dir"):
                setattr(config, name, os.fspath(value))
        if not ok:
            raise TypeError(f"TrainConfig.{name} must be {expected}, got {preview(value)}")


@dataclass
class TrainResult:
    """What fit() reports: one history row per epoch and the best validation score."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None  # None when nothing was monitored
    best_metric: float | None = None
    stopped_early: bool = False
    device: str = "cpu"
    seconds: float = 0.0
