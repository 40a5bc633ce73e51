"""One training loop for every model of the course, so all chapters train, checkpoint and early-stop alike."""

from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from cdtl.progress import enabled, tqdm

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = (None, "cosine", "step", "plateau")
MODES = ("max", "min")

# The loop reads the loss back from the device only every SYNC_EVERY steps: often enough for the
# progress bar and to catch a NaN quickly, rarely enough not to stall a GPU on every step.
SYNC_EVERY = 20

# Names of the files in TrainConfig.checkpoint_dir.
LAST_WEIGHTS = "last.safetensors"
LAST_OPTIMIZER = "last_optimizer.safetensors"
LAST_STATE = "last.json"
BEST_WEIGHTS = "best.safetensors"

# Keys every history row has; a validate() function must not return these.
HISTORY_KEYS = ("epoch", "train_loss", "lr", "seconds")

Batch = Mapping[str, torch.Tensor]
BatchFactory = Callable[[int, torch.Generator], Iterable[Batch]]
Validate = Callable[[nn.Module], Mapping[str, float]]
PathLike = str | os.PathLike


# --------------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """Every knob of the training loop; the defaults suit the course's small models."""

    epochs: int = 20
    optimizer: str = "adamw"  # "adamw" | "adam" | "sgd"
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
    progress: bool = True  # a tqdm bar per epoch
    log_dir: str | None = None  # write TensorBoard logs here (needs the tensorboard package)
    checkpoint_dir: str | None = None  # safetensors checkpoints after every epoch
    resume: bool = False  # continue from the last checkpoint in checkpoint_dir

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


_INT_FIELDS = ("epochs", "step_size", "warmup_epochs", "patience", "seed")
_FLOAT_FIELDS = ("lr", "weight_decay", "momentum", "gamma", "min_delta", "grad_clip")
_BOOL_FIELDS = ("amp", "progress", "resume")
_STR_FIELDS = ("optimizer", "scheduler", "monitor", "mode", "device", "log_dir", "checkpoint_dir")
_OPTIONAL_FIELDS = ("scheduler", "monitor", "grad_clip", "log_dir", "checkpoint_dir")


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
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
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
            raise TypeError(f"TrainConfig.{name} must be {expected}, got {value!r} ({type(value).__name__})")


@dataclass
class TrainResult:
    """What fit() reports: one history row per epoch and the best validation score."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None  # None when nothing was monitored
    best_metric: float | None = None
    stopped_early: bool = False
    device: str = "cpu"
    seconds: float = 0.0


# --------------------------------------------------------------------------- device and seeds


def choose_device(name: str = "auto") -> torch.device:
    """The torch device for a name: "auto" picks cuda, then mps, then cpu."""
    mps_available = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available:
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {name!r}; valid choices: auto, cpu, cuda, cuda:N, mps") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    if device.type == "mps" and not mps_available:
        raise ValueError(f"device {name!r} was asked for, but MPS is not available here; use 'auto' or 'cpu'")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}; valid choices: auto, cpu, cuda, cuda:N, mps")
    return device


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) random generators."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def _epoch_seeds(seed: int, epoch: int) -> tuple[int, int]:
    """Two independent seeds for one epoch: one for the batches' generator, one for dropout & co.

    Deriving them from (seed, epoch) rather than drawing them in sequence means epoch 3 sees the
    same random numbers whether the run started at epoch 0 or resumed from a checkpoint.
    """
    data_seed, global_seed = np.random.SeedSequence([seed, epoch]).generate_state(2)
    return int(data_seed), int(global_seed)


# --------------------------------------------------------------------------- weights on disk


def save_weights(model: nn.Module, path: PathLike, metadata: Mapping[str, Any] | None = None) -> Path:
    """Save a model's state dict as safetensors, with JSON-encoded metadata in the file's header."""
    path = Path(path)
    header = {str(key): json.dumps(value) for key, value in (metadata or {}).items()}
    tensors = _safetensors_ready(model.state_dict())
    _atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))
    return path


def load_weights(model: nn.Module, path: PathLike, *, strict: bool = True) -> dict[str, Any]:
    """Load weights written by save_weights into model (on whatever device it is) and return their metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    model.load_state_dict(load_file(str(path), device="cpu"), strict=strict)
    return _read_metadata(path)


def _read_metadata(path: Path) -> dict[str, Any]:
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata() or {}
    return {key: json.loads(value) for key, value in header.items()}


def _safetensors_ready(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous tensors that share no memory (safetensors refuses shared memory, e.g. tied weights)."""
    ready: dict[str, torch.Tensor] = {}
    seen_storage: set[int] = set()
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen_storage:
            tensor = tensor.clone()
        seen_storage.add(pointer)
        ready[name] = tensor
    return ready


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write to a temporary file, then rename it: a crash mid-write never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _split_tensors(obj: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-ready copy of obj whose tensors are moved into `tensors` and replaced by their names.

    Optimizer state is a nest of dicts (with int keys), lists, tuples, numbers and tensors;
    the markers below let _join_tensors rebuild exactly the same structure without pickle.
    """
    if isinstance(obj, torch.Tensor):
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, Mapping):
        if all(isinstance(key, str) for key in obj):
            return {key: _split_tensors(value, f"{name}.{key}", tensors) for key, value in obj.items()}
        return {"__items__": [[key, _split_tensors(value, f"{name}.{key}", tensors)] for key, value in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_split_tensors(value, f"{name}.{i}", tensors) for i, value in enumerate(obj)]}
    if isinstance(obj, list):
        return [_split_tensors(value, f"{name}.{i}", tensors) for i, value in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint {name} of type {type(obj).__name__} without pickle")


def _join_tensors(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Undo _split_tensors."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {key: _join_tensors(value, tensors) for key, value in obj["__items__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(_join_tensors(value, tensors) for value in obj["__tuple__"])
        return {key: _join_tensors(value, tensors) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_join_tensors(value, tensors) for value in obj]
    return obj


# --------------------------------------------------------------------------- learning-rate schedule


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
        if _improved(value, self.plateau_best, mode, self.config.min_delta):
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


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    """Whether value beats best by more than min_delta (NaN never improves)."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


# --------------------------------------------------------------------------- the loop


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by config.optimizer over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def fit(
    model: nn.Module,
    batches: BatchFactory,
    config: TrainConfig | Mapping[str, Any] | None = None,
    validate: Validate | None = None,
) -> TrainResult:
    """Train model with the loop every chapter shares and return the per-epoch history.

    model:    any nn.Module with a method loss(batch) -> scalar tensor.
    batches:  batches(epoch, generator) -> iterable of dicts of CPU tensors, called once per epoch;
              draw all randomness (shuffling, negative sampling) from `generator` for reproducible runs.
    validate: validate(model) -> {"metric": value}, called after every epoch in eval mode without autograd.

    With config.monitor set, training stops after config.patience epochs without improvement and the
    best weights are restored. The model is left on the chosen device, in eval mode.
    """
    if config is None:
        config = TrainConfig()
    elif isinstance(config, Mapping):
        config = TrainConfig.from_dict(config)
    if not callable(getattr(model, "loss", None)):
        raise TypeError(f"{type(model).__name__} has no loss(batch) method; fit() calls model.loss(batch) -> scalar")
    if config.monitor is not None and validate is None:
        raise ValueError(f"monitor={config.monitor!r} needs a validate function to compute it")

    started = time.perf_counter()
    device = choose_device(config.device)
    model.to(device)
    optimizer = make_optimizer(model, config)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    schedule = LRSchedule(config)
    use_amp = config.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    checkpoint_dir = Path(config.checkpoint_dir) if config.checkpoint_dir is not None else None

    result = TrainResult(device=str(device))
    best_state: dict[str, torch.Tensor] | None = None  # CPU copy of the best weights so far
    bad_epochs = 0  # epochs since the monitored metric last improved
    start_epoch = 0
    last_checkpoint: Path | None = None

    if config.resume and checkpoint_dir is not None:  # TrainConfig refuses resume without a checkpoint_dir
        saved = _load_checkpoint(checkpoint_dir, model, optimizer, schedule, scaler, config)
        if saved is not None:
            start_epoch = saved["epoch"] + 1
            result.history = saved["history"]
            result.best_epoch, result.best_metric = saved["best_epoch"], saved["best_metric"]
            result.stopped_early = saved["stopped_early"]
            bad_epochs = saved["epochs_without_improvement"]
            best_state = saved["best_state"]
            last_checkpoint = checkpoint_dir / LAST_WEIGHTS

    writer = _tensorboard_writer(config.log_dir) if config.log_dir is not None else None
    try:
        for epoch in range(start_epoch, config.epochs):
            if result.stopped_early:
                break
            epoch_started = time.perf_counter()
            data_seed, global_seed = _epoch_seeds(config.seed, epoch)
            set_seed(global_seed)  # dropout and any other draw from the global generators
            generator = torch.Generator().manual_seed(data_seed)
            lr = schedule.lr(epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr

            # ---- train one epoch
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
                    with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                        loss = model.loss(batch)  # type: ignore[operator]
                    _check_loss_shape(loss)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if config.grad_clip is not None:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    pending.append(loss.detach().float())
                    steps += 1
                    if len(pending) == SYNC_EVERY:
                        loss_sum += _sum_finite(pending, epoch, step + 1 - len(pending), last_checkpoint)
                        pending = []
                        bar.set_postfix(loss=f"{loss_sum.item() / steps:.4f}", refresh=False)
            if pending:
                loss_sum += _sum_finite(pending, epoch, steps - len(pending), last_checkpoint)
            if steps == 0:
                raise ValueError(f"batches({epoch}, generator) yielded no batches")
            row: dict[str, float] = {"epoch": epoch, "train_loss": loss_sum.item() / steps, "lr": lr}

            # ---- validate
            if validate is not None:
                model.eval()
                with torch.inference_mode():
                    metrics = validate(model)
                row.update(_check_metrics(metrics))

            # ---- early stopping and the lr schedule
            if config.monitor is not None:
                if config.monitor not in row:
                    available = sorted(set(row) - set(HISTORY_KEYS))
                    raise ValueError(f"monitor {config.monitor!r} is not among the validation metrics {available}")
                value = row[config.monitor]
                if _improved(value, result.best_metric, config.mode, config.min_delta):
                    result.best_epoch, result.best_metric, bad_epochs = epoch, value, 0
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                    if checkpoint_dir is not None:
                        save_weights(model, checkpoint_dir / BEST_WEIGHTS,
                                     {"epoch": epoch, "monitor": config.monitor, "value": value})
                else:
                    bad_epochs += 1
                    result.stopped_early = bad_epochs >= config.patience and epoch + 1 < config.epochs
                schedule.observe(value, config.mode)
            else:
                schedule.observe(row["train_loss"], "min")

            row["seconds"] = time.perf_counter() - epoch_started
            result.history.append(row)
            if writer is not None:
                for key, value in row.items():
                    if key != "epoch":
                        writer.add_scalar(key if key in HISTORY_KEYS else f"val/{key}", value, epoch)
            if checkpoint_dir is not None:
                last_checkpoint = _save_checkpoint(checkpoint_dir, model, optimizer, schedule, scaler,
                                                   config, result, epoch, bad_epochs)
            if config.progress and enabled():
                tqdm.write(_summary(row))
    finally:
        if writer is not None:
            writer.close()

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


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


def _sum_finite(losses: list[torch.Tensor], epoch: int, first_step: int, checkpoint: Path | None) -> torch.Tensor:
    """The sum of a window of step losses, after checking (one device sync) that none is NaN or inf."""
    window = torch.stack(losses)
    bad = ~torch.isfinite(window)
    if bad.any():
        index = int(bad.nonzero()[0])
        where = (f"the last good checkpoint is {checkpoint} (end of epoch {epoch - 1})" if checkpoint is not None
                 else "there is no checkpoint to go back to (set checkpoint_dir to keep one)")
        raise FloatingPointError(
            f"training loss is {window[index].item()} at epoch {epoch}, step {first_step + index} "
            f"(both counted from 0); {where}. Try a lower lr or grad_clip."
        )
    return window.sum()


def _check_metrics(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"validate(model) must return a dict of metrics, got {type(metrics).__name__}")
    clash = sorted(set(metrics) & set(HISTORY_KEYS))
    if clash:
        raise ValueError(f"validate(model) returned reserved key(s) {clash}; rename them (reserved: {HISTORY_KEYS})")
    return {str(key): float(value) for key, value in metrics.items()}


def _summary(row: Mapping[str, float]) -> str:
    parts = [f"{key}={value:.4g}" for key, value in row.items() if key not in ("epoch", "seconds")]
    return f"epoch {row['epoch']}: " + " ".join(parts) + f" ({row['seconds']:.1f} s)"


def _tensorboard_writer(log_dir: str) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ImportError(
            f"log_dir={log_dir!r} asks for TensorBoard logs, but the tensorboard package is not installed: "
            "pip install tensorboard, or set log_dir=None"
        ) from err
    return SummaryWriter(log_dir=log_dir)


# --------------------------------------------------------------------------- checkpoints

# Config keys that may change between a run and its resumption without changing the result.
_RESUMABLE_CHANGES = ("epochs", "resume", "progress", "log_dir", "checkpoint_dir", "device")


def _save_checkpoint(
    directory: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    scaler: torch.amp.GradScaler,
    config: TrainConfig,
    result: TrainResult,
    epoch: int,
    bad_epochs: int,
) -> Path:
    """Write last.safetensors, last_optimizer.safetensors and last.json (in that order) for `epoch`."""
    optimizer_tensors: dict[str, torch.Tensor] = {}
    optimizer_json = _split_tensors(optimizer.state_dict(), "optimizer", optimizer_tensors)
    optimizer_tensors = _safetensors_ready(optimizer_tensors)
    _atomic_write(directory / LAST_OPTIMIZER,
                  lambda tmp: save_file(optimizer_tensors, str(tmp), metadata={"epoch": json.dumps(epoch)}))
    save_weights(model, directory / LAST_WEIGHTS, {"epoch": epoch})
    state = {
        "epoch": epoch,
        "history": result.history,
        "best_metric": result.best_metric,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "epochs_without_improvement": bad_epochs,
        "config": config.to_dict(),
        "scheduler": schedule.state_dict(),
        "optimizer": optimizer_json,
        "grad_scaler": scaler.state_dict(),
    }
    text = json.dumps(state, indent=2)
    _atomic_write(directory / LAST_STATE, lambda tmp: tmp.write_text(text))
    return directory / LAST_WEIGHTS


def _load_checkpoint(
    directory: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    scaler: torch.amp.GradScaler,
    config: TrainConfig,
) -> dict[str, Any] | None:
    """Restore model, optimizer, schedule and scaler from `directory`; None when there is nothing to resume."""
    state_path = directory / LAST_STATE
    if not state_path.is_file():
        warnings.warn(f"resume=True but {state_path} does not exist; training from scratch", stacklevel=3)
        return None
    state = json.loads(state_path.read_text())
    epoch = state["epoch"]

    changed = [f"{key} ({state['config'].get(key)!r} -> {value!r})" for key, value in config.to_dict().items()
               if key not in _RESUMABLE_CHANGES and state["config"].get(key) != value]
    if changed:
        warnings.warn("resuming with a config that differs from the checkpoint's in " + ", ".join(changed)
                      + "; the result will not match an uninterrupted run", stacklevel=3)

    weights_epoch = load_weights(model, directory / LAST_WEIGHTS).get("epoch")
    optimizer_path = directory / LAST_OPTIMIZER
    if not optimizer_path.is_file():
        raise FileNotFoundError(f"{state_path} has no matching {optimizer_path}")
    optimizer_epoch = _read_metadata(optimizer_path).get("epoch")
    if weights_epoch != epoch or optimizer_epoch != epoch:
        raise RuntimeError(
            f"checkpoint files in {directory} disagree (last.json: epoch {epoch}, weights: epoch {weights_epoch}, "
            f"optimizer: epoch {optimizer_epoch}); a save was interrupted. Delete the folder to start over."
        )
    optimizer.load_state_dict(_join_tensors(state["optimizer"], load_file(str(optimizer_path), device="cpu")))
    schedule.load_state_dict(state["scheduler"])
    if state["grad_scaler"]:
        scaler.load_state_dict(state["grad_scaler"])

    best_state = None
    if state["best_epoch"] is not None:
        best_path = directory / BEST_WEIGHTS
        if not best_path.is_file() or _read_metadata(best_path).get("epoch") != state["best_epoch"]:
            raise RuntimeError(f"{best_path} is missing or is not the best epoch {state['best_epoch']} of {state_path}")
        best_state = load_file(str(best_path), device="cpu")
    return {**state, "best_state": best_state}
