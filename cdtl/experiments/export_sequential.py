"""A bundle's optional next-item model: trained on the fusion split's ordered histories of both domains, scored on its test users.

``export.sequential`` (a mapping; absent or null: no sequential part) names the model,
``text_sasrec`` (the default: the text SASRec of the sequential chapter over the bundle's
own language-model vectors, so it reads items by their text) or ``sasrec`` (item ids), its
constructor arguments (each defaults to the model's own), ``batch_size`` and a ``train``
section. Its catalogue is the bundle's: every source item, then every target item.

Every user's training history is their training interactions of both domains, the ones
matrix factorisation and the bridge train on, in time order (ties broken by catalogue row:
source items first, then by item). The model learns the next item at every position
(``cdtl.models.sequential.next_item_batches``), early-stops on the fusion's validation
part, and is scored on the fusion's test part from the same histories, ranking the target
items with the same exclusions: its per-user metrics line up with the served fusion's, user
for user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cdtl.configfile import clip, preview
from cdtl.data.sequential import left_pad
from cdtl.experiments.common import ConfigError, check_ranking_metrics, check_train, constructor_defaults, rank_users
from cdtl.experiments.fusion import evaluate_test
from cdtl.experiments.sections import TrainSection
from cdtl.experiments.sequential import TRAIN  # the sequential experiment's training defaults
from cdtl.models.sequential import next_item_batches
from cdtl.serve.sequential import ARGS, MODELS, build_model
from cdtl.train import fit, set_seed

LIMITS = {"dim": 4096, "max_len": 4096, "layers": 48, "heads": 64, "n_experts": 64, "batch_size": 65536}


def resolve(section: Any, where: str = "export.sequential") -> dict[str, Any] | None:
    """The settings of a sequential part with every default filled in, or None without one; bad values by key."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be a mapping (model, its arguments, batch_size, train) or null, "
                          f"got {preview(section)}")
    name = section.get("model", "text_sasrec")
    if name not in MODELS:
        raise ConfigError(f"{where}.model must be one of {', '.join(MODELS)}, got {preview(name)}")
    valid = ["model", *ARGS[name], "batch_size", "train"]
    unknown = sorted((str(k) for k in section if k not in valid), key=str)
    if unknown:
        raise ConfigError(f"unknown key(s) {where}.{clip(unknown[0], 80)}; valid keys for {name}: {', '.join(valid)}")
    args = {**constructor_defaults(MODELS[name], *ARGS[name]), **{k: section[k] for k in ARGS[name] if k in section}}
    batch_size = section.get("batch_size", 128)
    for key, value in {**args, "batch_size": batch_size}.items():
        _check_number(key, value, where)
    if args["dim"] % args["heads"]:
        raise ConfigError(f"{where}.dim ({args['dim']}) must be divisible by {where}.heads ({args['heads']})")
    train_section = section.get("train") or {}
    if not isinstance(train_section, dict):
        raise ConfigError(f"{where}.train must be a mapping of training settings, got {preview(train_section)}")
    train = {**TRAIN, **train_section}
    check_train(train, f"{where}.train")
    if train["monitor"] is not None:
        check_ranking_metrics([train["monitor"]], f"{where}.train.monitor")
    return {"model": name, "args": args, "batch_size": int(batch_size), "train": train}


def _check_number(key: str, value: Any, where: str) -> None:
    if key in ("dropout", "temperature"):
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        ok = ok and (0.0 <= value < 1.0 if key == "dropout" else value > 0)
        if not ok:
            expected = "a number in [0, 1)" if key == "dropout" else "a number above 0"
            raise ConfigError(f"{where}.{key} must be {expected}, got {preview(value)}")
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LIMITS[key]:
        raise ConfigError(f"{where}.{key} must be a whole number from 1 to {LIMITS[key]}, got {preview(value)}")


def training_histories(fd: Any) -> list[np.ndarray]:
    """Every user's training items of both domains in time order, as catalogue rows (source items, then target items)."""
    cd = fd.cd
    src, tgt = cd.source_train, cd.target_train
    users = np.concatenate([src["u"].to_numpy(), tgt["u"].to_numpy()])
    rows = np.concatenate([src["i"].to_numpy(), tgt["i"].to_numpy() + cd.n_source_items]).astype(np.int64)
    times = np.concatenate([_times(src), _times(tgt)])
    order = np.lexsort((rows, times, users))
    users, rows = users[order], rows[order]
    bounds = np.searchsorted(users, np.arange(cd.n_users + 1))
    return [rows[bounds[u]:bounds[u + 1]] for u in range(cd.n_users)]


def _times(frame: Any) -> np.ndarray:
    if "timestamp" not in frame:
        raise ConfigError("a sequential part needs the time of every interaction (a timestamp column); this dataset has none")
    return frame["timestamp"].to_numpy().astype(np.float64)


@dataclass
class SequentialFit:
    """A trained next-item model for a bundle, its constructor arguments, and its test metrics on the fusion's test users."""

    model: Any
    args: dict[str, Any]
    per_user: dict[str, np.ndarray]
    info: dict[str, Any]


def train_sequential(cfg: dict[str, Any], fd: Any, text: torch.Tensor, settings: dict[str, Any]) -> SequentialFit:
    """Train ``settings``' model (``resolve``) on ``fd``'s histories over ``text`` (source rows, then target rows)."""
    histories = training_histories(fd)
    n_source, max_len = fd.cd.n_source_items, settings["args"]["max_len"]
    padded = torch.from_numpy(left_pad(histories, max_len)[0])
    set_seed(cfg["seed"])
    model = build_model(settings, text.float())

    @torch.no_grad()
    def score_all(users: torch.Tensor) -> torch.Tensor:
        return model.score_histories(padded[users]).cpu()[:, n_source:]

    train = settings["train"]
    monitor = train["monitor"]

    def validate(module: Any) -> dict[str, float]:
        out = rank_users(score_all, fd.fit, [monitor], fd.fit_exclude, cfg["evaluate"]["batch_size"])
        return {monitor: float(out[monitor].mean())}

    batches = next_item_batches(histories, max_len, settings["batch_size"])
    result = fit(model, batches, TrainSection.of(train).train_config(cfg["seed"]), validate if monitor else None)
    model.cpu().eval()
    per_user = evaluate_test(cfg, fd, score_all)
    info = {"model": settings["model"], "best_epoch": result.best_epoch, "epochs": len(result.history),
            "seconds": result.seconds, "truncated_histories": int(sum(len(h) > max_len for h in histories))}
    return SequentialFit(model, settings["args"], per_user, info)


__all__ = ["LIMITS", "SequentialFit", "resolve", "train_sequential", "training_histories"]
