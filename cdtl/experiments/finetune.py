"""Fine-tuning the language model as a recommender (``kind: finetune``), then ranking cold users by text alone.

Chapter 03's experiment, on a cold-start split (``cdtl.data.cold_start_split``):

- the item tower of a two-tower model (``cdtl.models.two_tower``), the language model
  itself, is fine-tuned with an in-batch softmax on the split's training histories (both
  domains, in time order; ``batches.max_users`` of them sampled, null for every user): never a
  held-out target interaction of a cold user;
- the test cold users are then ranked by the text-only recommender
  (``cdtl.models.text_only.evaluate_cold_start``) four ways: with the frozen encoder's item
  vectors and with the fine-tuned tower's, each plain and whitened (``evaluate.whiten_dim``).
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.configfile import preview
from cdtl.data import cold_start_split, load
from cdtl.evaluate import report
from cdtl.experiments.common import (
    ConfigError,
    Result,
    check_ranking_metrics,
    check_train,
    constructor_defaults,
    merge_config,
    prepare_output,
    ranking_cutoffs,
    summary_of,
    versions,
    write_results,
)
from cdtl.experiments.sections import TextSection, TrainSection, train_section
from cdtl.models.text_only import evaluate_cold_start, history_rows
from cdtl.models.two_tower import LR, WEIGHT_DECAY, TwoTower, two_tower_batches
from cdtl.nb import metric_table
from cdtl.train import fit, set_seed

TOWER_KEYS = ("freeze_layers", "max_history", "user_pooling", "adaptor", "adaptor_dim", "n_experts",
              "dropout", "temperature")
SYSTEMS = {"frozen": (False, False), "frozen_whitened": (False, True),  # name -> (fine-tuned, whitened)
           "finetuned": (True, False), "finetuned_whitened": (True, True)}
DEFAULTS: dict[str, Any] = {
    "kind": "finetune",
    "name": "finetune",
    "seed": 0,
    "dataset": {"name": "movielens-100k", "domains": "genre"},
    "protocol": {"source": "action", "target": "comedy", "cold_ratio": 0.2},
    "model": constructor_defaults(TwoTower, *TOWER_KEYS),
    # model: a Hugging Face id or folder, None for the packaged all-MiniLM-L6-v2
    "text": TextSection.defaults(),
    # max_users: how many training histories fine-tune the tower (None: every user's), as tuning.max_users elsewhere
    "batches": {"batch_size": 64, "max_users": None, "logq": True},
    "train": train_section(epochs=1, lr=LR, weight_decay=WEIGHT_DECAY),
    "evaluate": {"metrics": ["ndcg@10", "recall@10"], "bootstrap": 1000, "whiten_dim": 32},
}


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice, so a bad config fails before any data is loaded."""
    cfg = merge_config(DEFAULTS, config, "")
    check_ranking_metrics(cfg["evaluate"]["metrics"])
    check_train(cfg["train"], "train")
    if not 0.0 < float(cfg["protocol"]["cold_ratio"]) < 1.0:
        raise ConfigError(f"protocol.cold_ratio must be in (0, 1), got {preview(cfg['protocol']['cold_ratio'])}")
    for key in ("max_users", "batch_size"):
        value = cfg["batches"][key]
        if key == "max_users" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"batches.{key} must be an integer >= 1{' or null' if key == 'max_users' else ''}, "
                              f"got {preview(value)}")
    whiten_dim = cfg["evaluate"]["whiten_dim"]
    if isinstance(whiten_dim, bool) or not isinstance(whiten_dim, int) or whiten_dim < 1:
        raise ConfigError(f"evaluate.whiten_dim must be a positive integer, got {preview(whiten_dim)}")
    return cfg


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """``config`` sized for a profile: its fine-tuning users, epochs, frozen layers, history and text lengths."""
    config = copy.deepcopy(config)
    model, batches = config.setdefault("model", {}), config.setdefault("batches", {})
    model.update(freeze_layers=profile.finetune_freeze_layers, max_history=profile.finetune_max_history)
    TextSection.size(config, profile)
    batches.update(batch_size=profile.finetune_batch_size, max_users=profile.finetune_users or None)
    config.setdefault("train", {})["epochs"] = profile.finetune_epochs
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap
    return config


def training_histories(split: Any, users: int | None, seed: int) -> list[np.ndarray]:
    """Every user's training items (rows of the item table, oldest first), ``users`` of them sampled (None or 0: all)."""
    _, histories = history_rows(split.train, split.data.items)
    if users and users < len(histories):
        keep = np.sort(np.random.default_rng(seed).choice(len(histories), users, replace=False))
        histories = [histories[k] for k in keep]
    return histories


def run(config: dict[str, Any], out_dir: str | os.PathLike | None = None, *, data: Any = None,
        overwrite: bool = False) -> Result:
    """Fine-tune the item tower, then score the four text-only systems on the test cold users; return the ``Result``.

    ``data`` (a two-domain ``RecData`` with item texts) replaces the config's dataset. The result's
    ``models`` hold the fine-tuned ``TwoTower``; ``out_dir`` must not hold an earlier run unless ``overwrite``.
    """
    from cdtl.encoders.catalogue import encode_items

    started = time.perf_counter()
    cfg = resolve(config)
    out = prepare_output(out_dir, overwrite)
    ds, proto, ev, m = cfg["dataset"], cfg["protocol"], cfg["evaluate"], cfg["model"]
    data = load(ds["name"], ds["domains"]) if data is None else data
    for role in ("source", "target"):
        if proto[role] not in data.domains:
            raise ConfigError(f"protocol.{role} {preview(proto[role])} is not a domain of {data.name}: {data.domains}")
    split = cold_start_split(data, proto["source"], proto["target"], proto["cold_ratio"], seed=cfg["seed"])
    texts = data.items["text"].tolist()
    text = TextSection.of(cfg["text"])
    frozen = encode_items(data.items, **text.encoder_arguments())
    histories = training_histories(split, cfg["batches"]["max_users"], cfg["seed"])

    set_seed(cfg["seed"])
    tower = TwoTower(text.model, max_length=int(text.max_length), **{key: m[key] for key in TOWER_KEYS})
    untrained = torch.nn.functional.cosine_similarity(tower.encode_items(texts[:64]), frozen[:64]).min()
    batches = two_tower_batches(tower, texts, histories, batch_size=cfg["batches"]["batch_size"],
                                logq=cfg["batches"]["logq"])
    trained = fit(tower, batches, TrainSection.of(cfg["train"]).train_config(cfg["seed"]))
    tuned = tower.encode_items(texts, batch_size=int(text.encode_batch_size))

    systems, frames = {}, []
    for name, (finetuned, whiten) in SYSTEMS.items():
        per_user = evaluate_cold_start(split, tuned if finetuned else frozen, users="test", whiten=whiten,
                                       whiten_dim=ev["whiten_dim"], ks=ranking_cutoffs(ev["metrics"]))
        values = {metric: per_user[metric] for metric in ev["metrics"]}
        systems[name] = report(values, ev["bootstrap"], cfg["seed"])
        frames.append(pd.DataFrame({"system": name, "user": per_user["users"], **values}))
    per_user_table = pd.concat(frames, ignore_index=True)
    summary = {
        "name": cfg["name"], "kind": "finetune", "config": cfg, "seed": cfg["seed"],
        "counts": {"finetune_users": len(histories), "steps_per_epoch": len(batches),
                   "trainable_weights": sum(p.numel() for p in tower.parameters() if p.requires_grad),
                   "frozen_layers": tower.freeze_layers, "layers": tower.n_layers, **split.summary()},
        "checks": {"untrained_tower_min_cosine": float(untrained)},  # the untrained tower is the frozen encoder
        "systems": systems, "history": trained.history, "device": trained.device,
        "versions": versions(), "wall_seconds": time.perf_counter() - started,
    }
    if out is not None:
        write_results(out, summary, per_user_table)
    return Result(summary, {"two_tower": tower}, per_user_table, split)


def format_table(summary: dict[str, Any]) -> str:
    """The four text-only systems on the test cold users: each metric with its 95 % interval."""
    summary = summary_of(summary)
    counts = summary["counts"]
    head = (f"{summary['name']}  (seed {summary['seed']}; {counts['finetune_users']} users, {counts['frozen_layers']} of "
            f"{counts['layers']} layers frozen; {summary['wall_seconds']:.0f} s)")
    return head + "\n" + metric_table(summary["systems"], users=True).to_string()


__all__ = ["DEFAULTS", "SYSTEMS", "format_table", "resolve", "run", "size", "training_histories"]
