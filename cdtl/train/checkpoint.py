"""Weights and training checkpoints on disk without pickle: safetensors for tensors, JSON for everything else.

A checkpoint folder holds, after every epoch, ``last.safetensors`` (the weights),
``last_optimizer.safetensors`` (the optimizer's tensors) and ``last.json`` (the epoch, the
history, the schedule and the optimizer's structure), written in that order and each
atomically; ``best.safetensors`` holds the weights of the best epoch so far.

Each tensor file carries the sha256 of its payload, and ``last.json`` the sha256 of its own
content and the run's fingerprint (data, split, settings). Resuming checks all of them before
anything is loaded: a damaged file is named (``CorruptFileError``), another run's checkpoint
is refused with the keys that differ (``ResumeError``).

This module knows the files, not the training loop: it saves and loads a ``Checkpoint`` of plain
values (tensors and JSON), which ``TrainingState.to_checkpoint`` makes and ``TrainingState.restore``
reads back.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cdtl.io import CorruptFileError, atomic_write, bytes_hash, read_json
from cdtl.tensorfile import DIGEST_KEY, load_tensors, read_header, save_tensors

PathLike = str | os.PathLike

# Names of the files in TrainConfig.checkpoint_dir.
LAST_WEIGHTS = "last.safetensors"
LAST_OPTIMIZER = "last_optimizer.safetensors"
LAST_STATE = "last.json"
BEST_WEIGHTS = "best.safetensors"

# Config keys that may change between a run and its resumption without changing the result.
RESUMABLE_CHANGES = ("epochs", "resume", "progress", "log_dir", "checkpoint_dir", "device")
START_OVER = "this checkpoint cannot be resumed: delete its folder (or set another checkpoint_dir) to start over"


class ResumeError(ValueError):
    """A checkpoint that belongs to another run (data, split or settings differ); the message lists what differs."""


# --------------------------------------------------------------------------- weights


def save_weights(model: nn.Module, path: PathLike, metadata: Mapping[str, Any] | None = None) -> Path:
    """Save a model's state dict as safetensors (atomically), with JSON-encoded metadata and a payload sha256 in its header."""
    header = {str(key): json.dumps(value) for key, value in (metadata or {}).items()}
    return save_tensors(path, safetensors_ready(model.state_dict()), header)


def load_weights(model: nn.Module, path: PathLike, *, strict: bool = True, require_digest: bool = False) -> dict[str, Any]:
    """Load weights written by save_weights into model (on whatever device it is) and return their metadata.

    The payload's sha256 is checked when the file records one (with ``require_digest``, it must).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    tensors, header = load_tensors(path, what="weights file", require_digest=require_digest)
    model.load_state_dict(tensors, strict=strict)
    return {key: json.loads(value) for key, value in header.items()}


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata in a safetensors file's header."""
    header = read_header(path, what="weights file")
    return {key: json.loads(value) for key, value in header.items() if key != DIGEST_KEY}


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


@dataclass
class Checkpoint:
    """One checkpoint as plain values: the weights, the optimizer's tensors, and the JSON-ready rest.

    ``values`` is written to ``last.json`` as it is, in its order. The file layer reads four of its
    keys: ``epoch`` (every file of a checkpoint records it), ``best_epoch`` (which ``best.safetensors``
    must hold), ``fingerprint`` and ``config`` (the run's identity, compared when resuming); the rest
    belongs to whoever made the checkpoint (``TrainingState.to_checkpoint``).
    """

    weights: Mapping[str, torch.Tensor]
    optimizer: Mapping[str, torch.Tensor]
    values: dict[str, Any]
    best_weights: dict[str, torch.Tensor] | None = None  # read back when resuming; never written by save_checkpoint


def _state_digest(saved: Mapping[str, Any]) -> str:
    return bytes_hash(json.dumps({k: v for k, v in saved.items() if k != "sha256"}, sort_keys=True).encode())


def save_checkpoint(directory: Path, checkpoint: Checkpoint) -> Path:
    """Write last_optimizer.safetensors, last.safetensors and last.json (in that order) for the checkpoint's epoch."""
    header = {"epoch": json.dumps(checkpoint.values["epoch"])}
    save_tensors(directory / LAST_OPTIMIZER, safetensors_ready(checkpoint.optimizer), header)
    save_tensors(directory / LAST_WEIGHTS, safetensors_ready(checkpoint.weights), header)
    saved = dict(checkpoint.values)
    saved["sha256"] = _state_digest(saved)
    atomic_write(directory / LAST_STATE, json.dumps(saved, indent=2))
    return directory / LAST_WEIGHTS


def _differences(saved: Mapping[str, Any], now: Mapping[str, Any], prefix: str, ignore: tuple[str, ...] = ()) -> list[str]:
    keys = sorted((set(saved) | set(now)) - set(ignore))
    return [f"{prefix}{key} ({saved.get(key)!r} -> {now.get(key)!r})" for key in keys if saved.get(key) != now.get(key)]


def _read_state(directory: Path, fingerprint: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """last.json after checking its sha256, and that it is this run's: the fingerprint and settings that matter agree."""
    state_path = directory / LAST_STATE
    saved = read_json(state_path, what="checkpoint state", fix=START_OVER)
    if not isinstance(saved, dict) or saved.get("sha256") != _state_digest(saved):
        raise CorruptFileError(state_path, "checkpoint state is damaged or edited (its sha256 does not match)", START_OVER)
    changed = _differences(saved["fingerprint"], fingerprint, "") + _differences(
        saved["config"], config, "train.", RESUMABLE_CHANGES)
    if changed:
        raise ResumeError(f"the checkpoint in {directory} is of another run: " + ", ".join(changed)
                          + f"; resuming would mix two runs. Restore those settings, or {START_OVER.split(': ', 1)[1]}")
    return saved


def load_checkpoint(directory: Path, fingerprint: Mapping[str, Any], config: Mapping[str, Any]) -> Checkpoint | None:
    """The checkpoint in ``directory`` as plain values; None when there is nothing to resume.

    Every file is checked first (its sha256, and that all are of the same epoch), and the run
    must be the same one: another ``fingerprint``, or a changed setting in ``config`` (a
    ``TrainConfig.to_dict()``) that changes results, raises ``ResumeError`` naming the keys; a
    damaged file raises ``CorruptFileError`` naming it. Nothing is returned, so nothing can be
    loaded into a model, until every check has passed; ``best_weights`` are the best epoch's.
    """
    state_path = directory / LAST_STATE
    if not state_path.is_file():
        warnings.warn(f"resume=True but {state_path} does not exist; training from scratch", stacklevel=4)
        return None
    saved = _read_state(directory, fingerprint, config)
    epoch = saved["epoch"]
    weights, weights_header = load_tensors(directory / LAST_WEIGHTS, what="checkpoint weights", fix=START_OVER)
    optimizer_tensors, optimizer_header = load_tensors(directory / LAST_OPTIMIZER, what="checkpoint optimizer state",
                                                       fix=START_OVER)
    weights_epoch, optimizer_epoch = (json.loads(h.get("epoch", "null")) for h in (weights_header, optimizer_header))
    if weights_epoch != epoch or optimizer_epoch != epoch:
        raise RuntimeError(
            f"checkpoint files in {directory} disagree (last.json: epoch {epoch}, weights: epoch {weights_epoch}, "
            f"optimizer: epoch {optimizer_epoch}); a save was interrupted. Delete the folder to start over."
        )
    best_weights = None
    if saved["best_epoch"] is not None:
        best_path = directory / BEST_WEIGHTS
        best_weights, best_header = load_tensors(best_path, what="best weights", fix=START_OVER)
        if json.loads(best_header.get("epoch", "null")) != saved["best_epoch"]:
            raise RuntimeError(f"{best_path} is not the best epoch {saved['best_epoch']} of {state_path}")
    del saved["sha256"]
    return Checkpoint(weights, optimizer_tensors, saved, best_weights)
