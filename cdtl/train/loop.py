"""One training loop for every model of the course, so all chapters train, checkpoint and early-stop alike.

``fit`` reads as its steps: start (device, optimizer, schedule, a checkpoint to resume), then
per epoch ``train_epoch``, ``validate_epoch``, ``early_stopping`` and ``end_epoch``, then
``finish`` (the best weights back in the model).

Under ``torchrun`` the same steps run on every rank (``cdtl.distributed``): ``start`` joins the
job and wraps the loss in DistributedDataParallel, each rank trains on its share of every
batch, the ranks agree on the epoch's loss and validation row, rank 0 alone writes
checkpoints, and a rank whose peer died stops with a message naming the last checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sized
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cdtl import distributed, progress
from cdtl.progress import enabled, tqdm
from cdtl.train.checkpoint import (
    BEST_WEIGHTS,
    LAST_WEIGHTS,
    Checkpoint,
    join_tensors,
    load_checkpoint,
    save_checkpoint,
    save_weights,
    split_tensors,
)
from cdtl.train.config import HISTORY_KEYS, TrainConfig, TrainResult
from cdtl.train.device import choose_device, epoch_seeds, set_seed
from cdtl.train.schedule import LRSchedule, improved, make_optimizer

# The loop reads the loss back from the device only every SYNC_EVERY steps: often enough for the
# progress bar and to catch a NaN quickly, rarely enough not to stall a GPU on every step.
SYNC_EVERY = 20

Batch = Mapping[str, torch.Tensor]
BatchFactory = Callable[[int, torch.Generator], Iterable[Batch]]
Validate = Callable[[nn.Module], Mapping[str, float]]


def fit(
    model: nn.Module,
    batches: BatchFactory,
    config: TrainConfig | Mapping[str, Any] | None = None,
    validate: Validate | None = None,
    *,
    fingerprint: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train model with the loop every chapter shares and return the per-epoch history.

    model:    any nn.Module with a method loss(batch) -> scalar tensor.
    batches:  batches(epoch, generator) -> iterable of dicts of CPU tensors, called once per epoch;
              draw all randomness (shuffling, negative sampling) from `generator` for reproducible runs.
    validate: validate(model) -> {"metric": value}, called after every epoch in eval mode without autograd.

    With config.monitor set, training stops after config.patience epochs without improvement and the
    best weights are restored. The model is left on the chosen device, in eval mode. A loss that
    turns NaN or inf, or grows past config.divergence times the first step's, stops the run.

    fingerprint: what makes this run this run beyond the config (e.g. hashes of the data and the
    split, the model's settings), a flat JSON-ready dict; checkpoints record it, and resuming
    with a different one is refused with the keys that differ.
    """
    config = _checked_config(model, config, validate)
    state = TrainingState.start(model, config, fingerprint)
    batches = distributed.shard_batches(batches)  # this rank's share of every batch (all of it in one process)
    log_dir = config.log_dir if distributed.is_main() else None  # one TensorBoard log per job
    epoch = state.next_epoch
    stop_together = distributed.stop_together(lambda: f"epoch {epoch}", lambda: state.last_checkpoint)
    with _tensorboard(log_dir) as log, stop_together:  # under torchrun, a peer's death stops this rank clearly
        for epoch in range(state.next_epoch, config.epochs):
            if state.result.stopped_early:
                break
            row = train_epoch(state, batches, epoch)
            if validate is not None:
                row.update(validate_epoch(model, validate))
            early_stopping(state, row, epoch)
            end_epoch(state, row, log)
    return state.finish()


@dataclass
class TrainingState:
    """Everything the loop carries from one epoch to the next (and what a checkpoint saves)."""

    model: nn.Module
    config: TrainConfig
    device: torch.device
    step_loss: Callable[[Batch], torch.Tensor]  # model.loss, or its DDP wrapper under torchrun
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype
    use_amp: bool
    started: float
    result: TrainResult
    next_epoch: int = 0
    bad_epochs: int = 0  # epochs since the monitored metric last improved
    best_state: dict[str, torch.Tensor] | None = None  # CPU copy of the best weights so far
    last_checkpoint: Path | None = None
    epoch_started: float = 0.0
    fingerprint: dict[str, Any] = field(default_factory=dict)  # the run's identity, kept in checkpoints
    guard: LossGuard = field(default_factory=lambda: LossGuard(None))

    @classmethod
    def start(cls, model: nn.Module, config: TrainConfig, fingerprint: Mapping[str, Any] | None = None) -> TrainingState:
        """Move the model to its device, make the optimizer, schedule and scaler; resume a checkpoint if asked."""
        started = time.perf_counter()
        device = choose_device(config.device)
        if distributed.setup(device):  # one rank of a torchrun job: its own GPU on CUDA
            device = distributed.local_device(device)
            config = replace(config, progress=config.progress and distributed.is_main())  # rank 0's bars only
        model.to(device)
        use_amp = config.amp and device.type == "cuda"
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        state = cls(model, config, device, model.loss, make_optimizer(model, config), LRSchedule(config),
                    torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16), amp_dtype,
                    use_amp, started, TrainResult(device=str(device)), fingerprint=dict(fingerprint or {}),
                    guard=LossGuard(config.divergence))
        if config.resume and config.checkpoint_dir is not None:  # TrainConfig refuses resume without a folder
            saved = load_checkpoint(Path(config.checkpoint_dir), state.fingerprint, state.config.to_dict())
            if saved is not None:
                state.restore(saved)
                state.last_checkpoint = Path(config.checkpoint_dir) / LAST_WEIGHTS
        if distributed.active():  # after resuming, so DDP starts every rank from the same weights
            state.step_loss = distributed.data_parallel(model)
        return state

    def to_checkpoint(self, epoch: int) -> Checkpoint:
        """The state at the end of ``epoch`` as plain values: weights, optimizer tensors, and JSON for the rest."""
        optimizer_tensors: dict[str, torch.Tensor] = {}
        optimizer_json = split_tensors(self.optimizer.state_dict(), "optimizer", optimizer_tensors)
        result = self.result
        values = {
            "epoch": epoch,
            "history": result.history,
            "best_metric": result.best_metric,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "epochs_without_improvement": self.bad_epochs,
            "config": self.config.to_dict(),
            "fingerprint": dict(self.fingerprint),
            "reference_loss": self.guard.reference,
            "scheduler": self.schedule.state_dict(),
            "optimizer": optimizer_json,
            "grad_scaler": self.scaler.state_dict(),
        }
        return Checkpoint(self.model.state_dict(), optimizer_tensors, values)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Carry on from a checkpoint made by ``to_checkpoint``: weights, optimizer, schedule, scaler and loop counters."""
        saved = checkpoint.values
        self.model.load_state_dict(checkpoint.weights)
        self.optimizer.load_state_dict(join_tensors(saved["optimizer"], checkpoint.optimizer))
        self.schedule.load_state_dict(saved["scheduler"])
        if saved["grad_scaler"]:
            self.scaler.load_state_dict(saved["grad_scaler"])
        self.guard.reference = saved["reference_loss"]
        self.next_epoch = saved["epoch"] + 1
        self.result.history = saved["history"]
        self.result.best_epoch, self.result.best_metric = saved["best_epoch"], saved["best_metric"]
        self.result.stopped_early = saved["stopped_early"]
        self.bad_epochs = saved["epochs_without_improvement"]
        self.best_state = checkpoint.best_weights

    def finish(self) -> TrainResult:
        """Put the best weights back (when a metric was monitored), switch to eval mode, time the run."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        self.result.seconds = time.perf_counter() - self.started
        if self.config.progress:
            progress.summary(_fit_summary(self.result, self.config.monitor))
        return self.result


def train_epoch(state: TrainingState, batches: BatchFactory, epoch: int) -> dict[str, float]:
    """One pass over the epoch's batches: seeds, learning rate, and a step per batch. Returns the history row."""
    config, model, optimizer, device = state.config, state.model, state.optimizer, state.device
    data_seed, global_seed = epoch_seeds(config.seed, epoch)
    set_seed(global_seed)  # dropout and any other draw from the global generators
    generator = torch.Generator().manual_seed(data_seed)
    lr = state.schedule.lr(epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state.epoch_started = time.perf_counter()
    model.train()
    epoch_batches = batches(epoch, generator)
    total = len(epoch_batches) if isinstance(epoch_batches, Sized) else None
    loss_sum = torch.zeros((), device=device)
    pending: list[torch.Tensor] = []  # losses not yet read back from the device
    steps = 0
    with tqdm(epoch_batches, total=total, desc=f"epoch {epoch}", leave=False,
              disable=not (config.progress and enabled())) as bar:
        for step, batch in enumerate(bar):
            batch = _to_device(batch, device)
            with torch.autocast(device_type=device.type, dtype=state.amp_dtype, enabled=state.use_amp):
                loss = state.step_loss(batch)
            _check_loss_shape(loss)
            optimizer.zero_grad(set_to_none=True)
            state.scaler.scale(loss).backward()
            if config.grad_clip is not None:
                state.scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            state.scaler.step(optimizer)
            state.scaler.update()
            pending.append(loss.detach().float())
            steps += 1
            if len(pending) == SYNC_EVERY:
                loss_sum += state.guard.sum(pending, epoch, step + 1 - len(pending), state.last_checkpoint)
                pending = []
                bar.set_postfix(loss=f"{loss_sum.item() / steps:.4f}", refresh=False)
    if pending:
        loss_sum += state.guard.sum(pending, epoch, steps - len(pending), state.last_checkpoint)
    if steps == 0:
        raise ValueError(f"batches({epoch}, generator) yielded no batches")
    return {"epoch": epoch, "train_loss": distributed.mean(loss_sum.item() / steps), "lr": lr}  # over the ranks


def validate_epoch(model: nn.Module, validate: Validate) -> dict[str, float]:
    """The validation metrics of the model after an epoch, in eval mode and without autograd."""
    model.eval()
    with torch.inference_mode():
        metrics = validate(model)
    if not isinstance(metrics, Mapping):
        raise TypeError(f"validate(model) must return a dict of metrics, got {type(metrics).__name__}")
    clash = sorted(set(metrics) & set(HISTORY_KEYS))
    if clash:
        raise ValueError(f"validate(model) returned reserved key(s) {clash}; rename them (reserved: {HISTORY_KEYS})")
    # every rank stops and schedules on rank 0's numbers, so no rank waits at a step the others skip
    return distributed.broadcast_object({str(key): float(value) for key, value in metrics.items()})


def early_stopping(state: TrainingState, row: dict[str, float], epoch: int) -> None:
    """Keep the best weights, count epochs without improvement, decide whether to stop; feed the schedule."""
    config, result = state.config, state.result
    if config.monitor is None:
        state.schedule.observe(row["train_loss"], "min")
        return
    if config.monitor not in row:
        available = sorted(set(row) - set(HISTORY_KEYS))
        raise ValueError(f"monitor {config.monitor!r} is not among the validation metrics {available}")
    value = row[config.monitor]
    if improved(value, result.best_metric, config.mode, config.min_delta):
        result.best_epoch, result.best_metric, state.bad_epochs = epoch, value, 0
        state.best_state = {k: v.detach().to("cpu", copy=True) for k, v in state.model.state_dict().items()}
        if config.checkpoint_dir is not None and distributed.is_main():
            save_weights(state.model, Path(config.checkpoint_dir) / BEST_WEIGHTS,
                         {"epoch": epoch, "monitor": config.monitor, "value": value})
    else:
        state.bad_epochs += 1
        result.stopped_early = state.bad_epochs >= config.patience and epoch + 1 < config.epochs
    state.schedule.observe(value, config.mode)


def end_epoch(state: TrainingState, row: dict[str, float], log: Any) -> None:
    """Time the epoch and append its row to the history; log it, checkpoint it and print a summary line."""
    epoch = int(row["epoch"])
    row["seconds"] = time.perf_counter() - state.epoch_started
    state.result.history.append(row)
    if log is not None:
        for key, value in row.items():
            if key != "epoch":
                log.add_scalar(key if key in HISTORY_KEYS else f"val/{key}", value, epoch)
    if state.config.checkpoint_dir is not None:  # rank 0 writes; every rank knows where
        directory = Path(state.config.checkpoint_dir)
        state.last_checkpoint = (save_checkpoint(directory, state.to_checkpoint(epoch)) if distributed.is_main()
                                 else directory / LAST_WEIGHTS)
    if state.config.progress and enabled():
        tqdm.write(_summary(row))


# --------------------------------------------------------------------------- checks and small helpers


def _checked_config(model: nn.Module, config: TrainConfig | Mapping[str, Any] | None,
                    validate: Validate | None) -> TrainConfig:
    """The config as a TrainConfig, after checking the model and the monitor can be used together."""
    if config is None:
        config = TrainConfig()
    elif isinstance(config, Mapping):
        config = TrainConfig.from_dict(config)
    if not callable(getattr(model, "loss", None)):
        raise TypeError(f"{type(model).__name__} has no loss(batch) method; fit() calls model.loss(batch) -> scalar")
    if config.monitor is not None and validate is None:
        raise ValueError(f"monitor={config.monitor!r} needs a validate function to compute it")
    return config


def _to_device(batch: Batch, device: torch.device) -> dict[str, Any]:
    if not isinstance(batch, Mapping):
        raise TypeError(f"batches must yield dicts of tensors, got {type(batch).__name__}")
    return {key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
            for key, value in batch.items()}


def _check_loss_shape(loss: Any) -> None:
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"model.loss(batch) must return a tensor, got {type(loss).__name__}")
    if loss.ndim != 0:
        raise ValueError(f"model.loss(batch) must return a scalar, got shape {tuple(loss.shape)}; use .mean()")


class LossGuard:
    """Stops a run whose loss is NaN or infinite, or has grown past ``factor`` times the first step's (any optimiser).

    Both end in the same message: the epoch and step, the last good checkpoint, and the fix.
    A window of losses is read back from the device in one sync (see ``SYNC_EVERY``).
    """

    def __init__(self, factor: float | None, reference: float | None = None) -> None:
        self.factor = factor
        self.reference = reference  # |loss| of the run's first step, kept in checkpoints

    def sum(self, losses: list[torch.Tensor], epoch: int, first_step: int, checkpoint: Path | None) -> torch.Tensor:
        """The sum of a window of step losses, after checking every one of them."""
        window = torch.stack(losses)
        values = window.detach().float().cpu().tolist()  # the one device sync of this window
        if self.reference is None and math.isfinite(values[0]):
            self.reference = abs(values[0])
        limit = self.factor * max(self.reference, 1.0) if self.factor and self.reference is not None else math.inf
        bad = [i for i, v in enumerate(values) if not math.isfinite(v) or abs(v) > limit]
        if bad:
            value = values[bad[0]]
            why = "" if not math.isfinite(value) else (
                f", over {self.factor:g} times the first step's {self.reference:.4g}: training diverged")
            where = (f"the last good checkpoint is {checkpoint} (end of epoch {epoch - 1})" if checkpoint is not None
                     else "there is no checkpoint to go back to (set checkpoint_dir to keep one)")
            raise FloatingPointError(
                f"training loss is {value:.4g} at epoch {epoch}, step {first_step + bad[0]} (both counted from 0){why}; "
                f"{where}. Try a lower lr or grad_clip."
            )
        return window.sum()


def _fit_summary(result: TrainResult, monitor: str | None) -> str:
    """One line for a whole run: epochs, time, and the best validation score when one was monitored."""
    epochs = len(result.history)
    line = f"trained {epochs} epoch{'s' if epochs != 1 else ''} in {result.seconds:.1f} s on {result.device}"
    if result.best_epoch is not None and result.best_metric is not None:
        line += f"; best {monitor} {result.best_metric:.4g} at epoch {result.best_epoch}"
    return line + (" (stopped early)" if result.stopped_early else "")


def _summary(row: Mapping[str, float]) -> str:
    parts = [f"{key}={value:.4g}" for key, value in row.items() if key not in ("epoch", "seconds")]
    return f"epoch {row['epoch']}: " + " ".join(parts) + f" ({row['seconds']:.1f} s)"


@contextmanager
def _tensorboard(log_dir: str | None):
    """A TensorBoard writer for log_dir (None: no logs), closed when training ends or fails."""
    if log_dir is None:
        yield None
        return
    try:  # optional: the tensorboard package is only needed when log_dir asks for logs
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ImportError(
            f"log_dir={log_dir!r} asks for TensorBoard logs, but the tensorboard package is not installed: "
            "pip install tensorboard, or set log_dir=None"
        ) from err
    writer = SummaryWriter(log_dir=log_dir)
    try:
        yield writer
    finally:
        writer.close()
