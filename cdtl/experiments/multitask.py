"""Single-task against shared-bottom, MMoE and PLE on the two-domain cold-start split, every task measured (``kind: multitask``).

Protocol (``cold_start_split`` + ``encode_split``):

- tasks ``source_rating`` (explicit source ratings), ``target_rating`` (explicit target
  ratings) and ``target_click`` (target interactions against sampled non-interactions);
- training: every source interaction (less a held-out slice) and the warm users' target
  interactions (less a held-out slice); no target interaction of a cold user;
- the source task is scored on ``protocol.source_holdout`` of the source training
  interactions, cut per user (``per_user_split``): half of it validates, half tests;
- the target tasks are scored on the cold users: the validation cold users select
  models (early stopping), the test cold users are scored once. Target rating RMSE/MAE
  pooled over ratings; target ranking NDCG@k/Recall@k over the whole target catalogue;
- the warm users' ``protocol.warm_holdout`` of their target interactions, held out from
  training, scores the target tasks on users the model has seen in the target domain;
- 95 % bootstrap intervals over users (``cdtl.evaluate.report``, ``rating_report``).

Early stopping: a single-task model is one model per task, each stopped on its own task's
validation metric. A multi-task model is stopped on ``train.monitor``, by default
``all``: the mean over tasks of the validation error relative to a trivial predictor
(RMSE / RMSE of the training mean; (1 - NDCG) / (1 - NDCG of popularity)), so every
task counts and 1.0 means "no better than trivial".
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.configfile import check_cutoffs, clip, preview
from cdtl.experiments.common import (
    ConfigError,
    Result,
    check_train,
    merge_config,
    prepare_output,
    versions,
    write_results,
)
from cdtl.experiments.multitask_baselines import (
    bridge_scorers,
    check_bridges,
    check_cold_users,
    mean_user_fix,
    without_bridge_transfer,
)
from cdtl.experiments.multitask_data import (
    MultiTaskData,
    evaluate_task,
    model_scorers,
    prepare,
    primary,
    relative_error,
    task_scores,
    trivial_scorers,
)
from cdtl.experiments.multitask_report import format_table, table, versus_single
from cdtl.experiments.sections import TextSection, TrainSection, train_section
from cdtl.experiments.transfer import size as transfer_size
from cdtl.models.multitask import ARCHS, KNOWN_TASKS, WEIGHTINGS, MultiTask, multitask_batches
from cdtl.progress import enabled, tqdm
from cdtl.train import fit, set_seed

DEFAULTS: dict[str, Any] = {
    "kind": "multitask",
    "name": "multitask",
    "seed": 0,
    "dataset": {"name": "movielens-100k", "domains": "genre"},
    "protocol": {"source": "action", "target": "comedy", "cold_ratio": 0.2, "source_holdout": 0.1,
                 "warm_holdout": 0.1},
    "features": {"text": True},  # the items' text vectors as an input (read as the text section says)
    "text": TextSection.defaults(),
    "tasks": ["source_rating", "target_rating", "target_click"],
    "model": {"dim": 32, "hidden": [64, 32], "tower": [16], "n_experts": 4, "n_specific": 1, "n_shared": 2,
              "levels": 1, "dropout": 0.0, "init_std": 0.01},
    # the models to compare: name, arch (ARCHS), weighting (WEIGHTINGS), loss_weights {task: w} (fixed only)
    "models": [{"name": "single", "arch": "single"}, {"name": "shared_bottom", "arch": "shared_bottom"},
               {"name": "mmoe", "arch": "mmoe"}, {"name": "ple", "arch": "ple"}],
    "batches": {"batch_size": 1024, "n_negatives": 1},
    "train": train_section(monitor="all", mode="min"),
    "evaluate": {"ks": [10], "bootstrap": 1000, "threshold": 4.0},
    # chapter 04's bridges (transfer model names) trained on the same training data; transfer: their transfer config
    "bridges": {"models": []},
}
MODEL_KEYS = ("name", "arch", "weighting", "loss_weights", "cold_users")


# --------------------------------------------------------------------------- configuration


# The largest sizes a config may ask for: resolve checks the model section by building a tiny model with
# it, so a hostile size (n_specific: 10**9) would otherwise hang or exhaust memory inside the check itself.
SIZE_LIMITS = {"dim": 4096, "n_experts": 64, "n_specific": 64, "n_shared": 64, "hidden": 8192, "tower": 8192}


def _check_sizes(model: dict[str, Any]) -> None:
    """Refuse, by key, a model size beyond ``SIZE_LIMITS`` before any model is built (other mistakes are the model's)."""
    for key, limit in SIZE_LIMITS.items():
        value = model.get(key)
        sizes = value if isinstance(value, list) else [value]
        for index, size in enumerate(sizes):
            if isinstance(size, int) and not isinstance(size, bool) and size > limit:
                where = f"model.{key}[{index}]" if isinstance(value, list) else f"model.{key}"
                raise ConfigError(f"{where} is {preview(size)}: at most {limit:,} is accepted")


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice, so a bad config fails before any data is loaded."""
    config, bridge_transfer = without_bridge_transfer(config)  # a transfer config, checked by the transfer kind
    cfg = merge_config({k: v for k, v in DEFAULTS.items() if k != "models"}, {k: v for k, v in config.items()
                                                                              if k != "models"}, "")
    cfg["models"] = copy.deepcopy(config.get("models", DEFAULTS["models"]))
    if cfg["kind"] != "multitask":
        raise ConfigError(f"kind must be 'multitask' for this runner, got {preview(cfg['kind'])}")
    tasks = cfg["tasks"]
    if not isinstance(tasks, list) or not tasks or any(t not in KNOWN_TASKS for t in tasks):
        raise ConfigError(f"tasks must be a non-empty list of {sorted(KNOWN_TASKS)}, got {preview(tasks)}")
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"tasks must be distinct, got {preview(tasks)}")
    if not isinstance(cfg["models"], list) or not cfg["models"]:
        raise ConfigError("models must be a non-empty list of {name, arch, weighting, loss_weights}")
    names = []
    for n, spec in enumerate(cfg["models"]):
        if not isinstance(spec, dict):
            raise ConfigError(f"models[{n}] must be a mapping, got {preview(spec)}")
        unknown = sorted(set(spec) - set(MODEL_KEYS))
        if unknown:
            raise ConfigError(f"models[{n}]: unknown key(s) {preview(unknown)}; valid keys: {', '.join(MODEL_KEYS)}")
        spec.setdefault("weighting", "fixed")
        spec.setdefault("loss_weights", None)
        check_cold_users(spec, n)
        if "name" not in spec or "arch" not in spec:
            raise ConfigError(f"models[{n}] needs a name and an arch, got {preview(spec)}")
        if spec["arch"] not in ARCHS:
            raise ConfigError(f"models[{n}].arch {preview(spec['arch'])} is not one of: {', '.join(ARCHS)}")
        if spec["weighting"] not in WEIGHTINGS:
            raise ConfigError(f"models[{n}].weighting {preview(spec['weighting'])} is not one of: {', '.join(WEIGHTINGS)}")
        weights = spec["loss_weights"] or {}
        if not isinstance(weights, dict) or set(weights) - set(tasks):
            raise ConfigError(f"models[{n}].loss_weights must map some of the tasks {tasks} to weights, got {preview(weights)}")
        if weights and spec["weighting"] == "uncertainty":
            raise ConfigError(f"models[{n}]: loss_weights are learned with weighting 'uncertainty'; use 'fixed'")
        if spec["arch"] == "single" and (weights or spec["weighting"] != "fixed"):
            raise ConfigError(f"models[{n}]: a single-task model has one task per model: no loss weights")
        names.append(spec["name"])
    if len(set(names)) != len(names):
        raise ConfigError(f"model names must be distinct, got {names}")
    proto = cfg["protocol"]
    if not 0.0 < float(proto["source_holdout"]) < 0.5:
        raise ConfigError(f"protocol.source_holdout must be in (0, 0.5), got {preview(proto['source_holdout'])}")
    if not 0.0 <= float(proto["warm_holdout"]) < 0.5:
        raise ConfigError("protocol.warm_holdout must be in [0, 0.5) (0: no warm-user scores), got "
                          f"{preview(proto['warm_holdout'])}")
    ks = cfg["evaluate"]["ks"]
    if not isinstance(ks, list) or not ks or any(not (isinstance(k, int) and k >= 1) for k in ks):
        raise ConfigError(f"evaluate.ks must be a list of positive cut-offs, got {preview(ks)}")
    _check_sizes(cfg["model"])
    try:
        MultiTask(3, [2, 2], tasks, "ple", **{k: v for k, v in cfg["model"].items()})
    except (TypeError, ValueError) as err:
        first = str(err).partition("\n")[0]  # torch's message, not the C++ frames it appends
        raise ConfigError(f"model: {clip(first, 200)}") from err
    check_train(cfg["train"], "train")
    cfg["bridges"]["transfer"] = check_bridges(cfg["bridges"]["models"], bridge_transfer)
    return cfg


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """The config capped to a profile: at most ``profile.epochs`` epochs, ``profile.bootstrap`` resamples, its text
    length and texts per forward pass."""
    config = copy.deepcopy(config)
    train = config.setdefault("train", {})
    train["epochs"] = min(int(train.get("epochs", profile.epochs)), profile.epochs)
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap
    TextSection.size(config, profile)
    bridges = config.setdefault("bridges", {})
    if bridges.get("models"):
        bridges["transfer"] = transfer_size(bridges.get("transfer", {}), profile)
    return config


# --------------------------------------------------------------------------- training


@dataclass
class ComparedModel:
    """One compared model: the trained network(s) (one per task for ``single``) and their training."""

    spec: dict[str, Any]
    models: dict[str, MultiTask]  # task -> the model that predicts it
    results: list[Any]  # TrainResult per network
    seconds: float


def build(cfg: dict[str, Any], data: MultiTaskData, spec: dict[str, Any], tasks: list[str]) -> MultiTask:
    """An untrained model of ``spec`` for ``tasks``, sized by ``cfg['model']``."""
    means = {t: float(data.examples(t)[2].mean()) for t in tasks if KNOWN_TASKS[t].kind == "rating"}
    return MultiTask(data.n_users, data.n_items, tasks, spec["arch"], item_text=data.item_text,
                     weighting=spec["weighting"], loss_weights=spec["loss_weights"], rating_means=means,
                     rating_scale=data.rating_scale, **cfg["model"])


def train_one(cfg: dict[str, Any], data: MultiTaskData, spec: dict[str, Any], tasks: list[str],
              references: dict[str, float]) -> tuple[MultiTask, Any]:
    """Train one network on ``tasks``; stopped on the task's metric (one task) or ``train.monitor``."""
    set_seed(cfg["seed"])
    model = build(cfg, data, spec, tasks)
    ks = cfg["evaluate"]["ks"]
    batches = multitask_batches(tasks, {t: data.examples(t) for t in tasks}, data.n_items,
                                cfg["batches"]["batch_size"], cfg["batches"]["n_negatives"])

    def validate(m: MultiTask) -> dict[str, float]:
        out = {}
        for t in tasks:
            metric, _ = primary(t, ks)
            out[f"{t}_{metric}"] = evaluate_task(cfg, data, t, "val", *model_scorers(m, t), per_user=True)[metric]
        out["all"] = float(np.mean([relative_error(t, out[f"{t}_{primary(t, ks)[0]}"], references[t]) for t in tasks]))
        return out

    stop: dict[str, Any] = {}
    if len(tasks) == 1:  # one task: stop on its own metric
        metric, mode = primary(tasks[0], ks)
        stop = {"monitor": f"{tasks[0]}_{metric}", "mode": mode}
    result = fit(model, batches, TrainSection.of(cfg["train"]).train_config(cfg["seed"], **stop), validate)
    return model, result


def train_spec(cfg: dict[str, Any], data: MultiTaskData, spec: dict[str, Any], references: dict[str, float],
               single_fits: dict[tuple[str, ...], tuple[MultiTask, Any]]) -> tuple[dict[str, MultiTask], list[Any]]:
    """({task: model}, [TrainResult]) of one compared model: one network per task (single) or one for all.

    A single-task network is trained once per task and reused (copied) by later single-task
    specs, which differ only in how they score unseen users: the same seed trains the same network.
    """
    tasks = cfg["tasks"]
    models, fits = {}, []
    for group in [[t] for t in tasks] if spec["arch"] == "single" else [tasks]:
        if spec["arch"] == "single" and tuple(group) in single_fits:
            model, result = copy.deepcopy(single_fits[tuple(group)][0]), single_fits[tuple(group)][1]
        else:
            model, result = train_one(cfg, data, spec, group, references)
            if spec["arch"] == "single":
                single_fits[tuple(group)] = (copy.deepcopy(model), result)
        if spec["cold_users"] == "mean_user":
            mean_user_fix(model, data, group)
        models.update({t: model for t in group})
        fits.append(result)
    return models, fits


def mean_gates(cfg: dict[str, Any], data: MultiTaskData, model: MultiTask, part: str = "test") -> dict[str, list[float]]:
    """{task: mean gate over ``expert_names``}, each task's gate averaged over its own held-out pairs of ``part``."""
    out = {}
    for t, name in enumerate(model.task_names):
        frame = data.held[part][KNOWN_TASKS[name].domain]
        batch = {"user": torch.tensor(frame["u"].to_numpy()), "item": torch.tensor(frame["i"].to_numpy()),
                 "task": torch.full((len(frame),), t)}
        out[name] = model.gate_weights(batch)[name].mean(0).tolist()
    return out


# --------------------------------------------------------------------------- the experiment


def run(config: dict[str, Any], out_dir: str | os.PathLike | None = None, *, data: Any = None,
        overwrite: bool = False) -> Result:
    """Train and score every model of the config; return the ``Result`` (and write ``out_dir/metrics.json``).

    ``data`` (a two-domain ``RecData`` with ratings) replaces the config's dataset. The result's
    ``models`` are ``{name: ComparedModel}``, its ``data`` the ``MultiTaskData`` they were scored on.
    ``out_dir`` must not hold an earlier run unless ``overwrite``.
    """
    started = time.perf_counter()
    cfg = resolve(config)
    out = prepare_output(out_dir, overwrite)
    set_seed(cfg["seed"])
    data = prepare(cfg, data)
    tasks, ks = cfg["tasks"], cfg["evaluate"]["ks"]
    check_cutoffs(ks, data.n_items[1], "evaluate.ks")  # ranked over the target catalogue, before any training

    trivial_val = {t: evaluate_task(cfg, data, t, "val", *trivial_scorers(data, t), per_user=True) for t in tasks}
    references = {t: trivial_val[t][primary(t, ks)[0]] for t in tasks}
    per_user: list[pd.DataFrame] = []
    trivial = {t: trivial_scorers(data, t) for t in tasks}
    scores: dict[str, dict[str, Any]] = {"trivial": _score(cfg, data, tasks, trivial, per_user, "trivial")}
    scores["trivial"]["val"] = trivial_val
    trained: dict[str, ComparedModel] = {}
    single_fits: dict[tuple[str, ...], tuple[MultiTask, Any]] = {}  # a single-task network per task, trained once
    for spec in tqdm(cfg["models"], desc="models", leave=False, disable=not enabled()):
        began = time.perf_counter()
        models, fits = train_spec(cfg, data, spec, references, single_fits)
        trained[spec["name"]] = ComparedModel(spec, models, fits, time.perf_counter() - began)
        row = _score(cfg, data, tasks, {t: model_scorers(models[t], t) for t in tasks}, per_user, spec["name"])
        best = [r.history[r.best_epoch] if r.best_epoch is not None else r.history[-1] for r in fits]
        row["val"] = {k: v for b in best for k, v in b.items() if k not in ("epoch", "train_loss", "lr", "seconds")}
        row.update(arch=spec["arch"], weighting=spec["weighting"],
                   best_epoch=[r.best_epoch for r in fits], epochs_run=[len(r.history) for r in fits],
                   seconds=trained[spec["name"]].seconds, history=[r.history for r in fits],
                   parameters=sum(sum(p.numel() for p in m.parameters()) for m in {id(m): m for m in models.values()}.values()))
        if spec["arch"] != "single":
            model = models[tasks[0]]
            row["loss_weights"] = model.loss_weights()
            if spec["arch"] in ("mmoe", "ple"):
                row["gates"] = {"experts": model.expert_names, "weights": mean_gates(cfg, data, model)}
        scores[spec["name"]] = row
    for name in cfg["bridges"]["models"]:  # chapter 04's bridges, on the target tasks
        began = time.perf_counter()
        scorers = bridge_scorers(name, data, tasks, cfg["bridges"]["transfer"], cfg["seed"])
        scores[f"bridge_{name}"] = {**_score(cfg, data, list(scorers), scorers, per_user, f"bridge_{name}"),
                                    "arch": "bridge", "seconds": time.perf_counter() - began}

    summary = {
        "name": cfg["name"], "kind": "multitask", "config": cfg, "seed": cfg["seed"], "counts": data.counts(),
        "references": references, "models": scores, "versus_single": versus_single(scores, tasks, ks),
        "versions": versions(), "wall_seconds": time.perf_counter() - started,
    }
    columns = ["model", "part", "task", "user"]
    table = pd.concat(per_user, ignore_index=True)
    table = table[columns + [c for c in table.columns if c not in columns]]
    if out is not None:
        write_results(out, summary, table)
    return Result(summary, dict(trained), table, data)


def _score(cfg, data, tasks, scorers, per_user: list[pd.DataFrame], name: str) -> dict[str, Any]:
    """Test metrics (cold users for target tasks) and warm-user metrics, per task; per-user rows go to ``per_user``."""
    out: dict[str, Any] = {"test": {}, "warm": {}}
    for t in tasks:
        for part in ("test", "warm") if KNOWN_TASKS[t].domain == 1 else ("test",):
            summary, table = task_scores(cfg, data, t, part, *scorers[t])
            if summary or part == "test":
                out[part][t] = summary
            if table is not None:
                per_user.append(table.assign(model=name, part=part, task=t))
    return out


__all__ = ["DEFAULTS", "MultiTaskData", "ComparedModel", "evaluate_task", "format_table",
           "mean_gates", "prepare", "primary", "relative_error", "resolve", "run", "size", "table", "versus_single"]
