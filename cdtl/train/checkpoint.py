"""Weights and training checkpoints on disk without pickle: safetensors for tensors, JSON for everything else.

A checkpoint folder holds, after every epoch, ``last.safetensors`` (the weights),
``last_optimizer.safetensors`` (the optimizer's tensors) and ``last.json`` (the epoch, the
history, the schedule and the optimizer's structure), written in that order and each
atomically; ``best.safetensors`` holds the weights of the best epoch so far.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

if TYPE_CHECKING:
    from cdtl.train.loop import TrainingState

PathLike = str | os.PathLike

# Names of the files in TrainConfig.checkpoint_dir.
LAST_WEIGHTS = "last.safetensors"
LAST_OPTIMIZER = "last_optimizer.safetensors"
LAST_STATE = "last.json"
BEST_WEIGHTS = "best.safetensors"

# Config keys that may change between a run and its resumption without changing the result.
RESUMABLE_CHANGES = ("epochs", "resume", "progress", "log_dir", "checkpoint_dir", "device")


# --------------------------------------------------------------------------- weights


def save_weights(model: nn.Module, path: PathLike, metadata: Mapping[str, Any] | None = None) -> Path:
    """Save a model's state dict as safetensors, with JSON-encoded metadata in the file's header."""
    path = Path(path)
    header = {str(key): json.dumps(value) for key, value in (metadata or {}).items()}
    tensors = safetensors_ready(model.state_dict())
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))
    return path


def load_weights(model: nn.Module, path: PathLike, *, strict: bool = True) -> dict[str, Any]:
    """Load weights written by save_weights into model (on whatever device it is) and return their metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    model.load_state_dict(load_file(str(path), device="cpu"), strict=strict)
    return read_metadata(path)


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata in a safetensors file's header."""
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata() or {}
    return {key: json.loads(value) for key, value in header.items()}


def safetensors_ready(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write to a temporary file, then rename it: a crash mid-write never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- optimizer state as JSON + tensors


def split_tensors(obj: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-ready copy of obj whose tensors are moved into `tensors` and replaced by their names.

    Optimizer state is a nest of dicts (with int keys), lists, tuples, numbers and tensors;
    the markers below let join_tensors rebuild exactly the same structure without pickle.
    """
    if isinstance(obj, torch.Tensor):
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, Mapping):
        if all(isinstance(key, str) for key in obj):
            return {key: split_tensors(value, f"{name}.{key}", tensors) for key, value in obj.items()}
        return {"__items__": [[key, split_tensors(value, f"{name}.{key}", tensors)] for key, value in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [split_tensors(value, f"{name}.{i}", tensors) for i, value in enumerate(obj)]}
    if isinstance(obj, list):
        return [split_tensors(value, f"{name}.{i}", tensors) for i, value in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint {name} of type {type(obj).__name__} without pickle")


def join_tensors(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Undo split_tensors."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {key: join_tensors(value, tensors) for key, value in obj["__items__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(join_tensors(value, tensors) for value in obj["__tuple__"])
        return {key: join_tensors(value, tensors) for key, value in obj.items()}
    if isinstance(obj, list):
        return [join_tensors(value, tensors) for value in obj]
    return obj


# --------------------------------------------------------------------------- checkpoints of the loop


def save_checkpoint(directory: Path, state: TrainingState, epoch: int) -> Path:
    """Write last.safetensors, last_optimizer.safetensors and last.json (in that order) for `epoch`."""
    optimizer_tensors: dict[str, torch.Tensor] = {}
    optimizer_json = split_tensors(state.optimizer.state_dict(), "optimizer", optimizer_tensors)
    optimizer_tensors = safetensors_ready(optimizer_tensors)
    atomic_write(directory / LAST_OPTIMIZER,
                 lambda tmp: save_file(optimizer_tensors, str(tmp), metadata={"epoch": json.dumps(epoch)}))
    save_weights(state.model, directory / LAST_WEIGHTS, {"epoch": epoch})
    result = state.result
    saved = {
        "epoch": epoch,
        "history": result.history,
        "best_metric": result.best_metric,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "epochs_without_improvement": state.bad_epochs,
        "config": state.config.to_dict(),
        "scheduler": state.schedule.state_dict(),
        "optimizer": optimizer_json,
        "grad_scaler": state.scaler.state_dict(),
    }
    text = json.dumps(saved, indent=2)
    atomic_write(directory / LAST_STATE, lambda tmp: tmp.write_text(text))
    return directory / LAST_WEIGHTS


def load_checkpoint(directory: Path, state: TrainingState) -> dict[str, Any] | None:
    """Restore the model, optimizer, schedule and scaler of `state` from `directory`; None when there is nothing to resume.

    Returns the saved loop state (epoch, history, best epoch and metric, ...) with ``best_state``,
    the best epoch's weights.
    """
    state_path = directory / LAST_STATE
    if not state_path.is_file():
        warnings.warn(f"resume=True but {state_path} does not exist; training from scratch", stacklevel=4)
        return None
    saved = json.loads(state_path.read_text())
    epoch = saved["epoch"]

    changed = [f"{key} ({saved['config'].get(key)!r} -> {value!r})" for key, value in state.config.to_dict().items()
               if key not in RESUMABLE_CHANGES and saved["config"].get(key) != value]
    if changed:
        warnings.warn("resuming with a config that differs from the checkpoint's in " + ", ".join(changed)
                      + "; the result will not match an uninterrupted run", stacklevel=4)

    weights_epoch = load_weights(state.model, directory / LAST_WEIGHTS).get("epoch")
    optimizer_path = directory / LAST_OPTIMIZER
    if not optimizer_path.is_file():
        raise FileNotFoundError(f"{state_path} has no matching {optimizer_path}")
    optimizer_epoch = read_metadata(optimizer_path).get("epoch")
    if weights_epoch != epoch or optimizer_epoch != epoch:
        raise RuntimeError(
            f"checkpoint files in {directory} disagree (last.json: epoch {epoch}, weights: epoch {weights_epoch}, "
            f"optimizer: epoch {optimizer_epoch}); a save was interrupted. Delete the folder to start over."
        )
    state.optimizer.load_state_dict(join_tensors(saved["optimizer"], load_file(str(optimizer_path), device="cpu")))
    state.schedule.load_state_dict(saved["scheduler"])
    if saved["grad_scaler"]:
        state.scaler.load_state_dict(saved["grad_scaler"])

    best_state = None
    if saved["best_epoch"] is not None:
        best_path = directory / BEST_WEIGHTS
        if not best_path.is_file() or read_metadata(best_path).get("epoch") != saved["best_epoch"]:
            raise RuntimeError(f"{best_path} is missing or is not the best epoch {saved['best_epoch']} of {state_path}")
        best_state = load_file(str(best_path), device="cpu")
    return {**saved, "best_state": best_state}
