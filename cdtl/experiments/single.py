"""One model on one protocol (``kind: single``, the default): MF or popularity, trained, validated and tested once.

The one kind that also runs under ``torchrun``: MF trains with DDP, validation and test
ranking are sharded over users, and rank 0 writes ``metrics.json``.
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

from cdtl import distributed
from cdtl.configfile import check_cutoffs, preview
from cdtl.data import cold_start_split, load
from cdtl.data.ids import IdMap, interaction_matrix
from cdtl.data.protocols import per_user_split, random_split
from cdtl.evaluate import rating_report, report
from cdtl.experiments.common import (
    RANKING,
    RANKING_CHOICES,
    ConfigError,
    Popularity,
    Result,
    check_train,
    merge_config,
    prepare_output,
    rank_users,
    rate_pairs,
    rating_scale,
    versions,
    write_results,
)
from cdtl.experiments.sections import TrainSection, train_section
from cdtl.fingerprint import run_fingerprint
from cdtl.models.batches import bpr_batches, rating_batches, softmax_batches
from cdtl.models.mf import LOSSES, MF
from cdtl.models.transfer import MeanUser
from cdtl.train import TrainConfig, choose_device, fit, set_seed

# Every key an experiment may have, with its default. Unknown keys fail before any work.
DEFAULTS: dict[str, Any] = {
    "name": "experiment",
    "seed": 0,
    "dataset": {"name": "movielens-100k", "domains": None, "domain": None},
    "protocol": {"name": "per_user", "fractions": [0.8, 0.1, 0.1], "test": 0.1, "val": 0.1,
                 "source": None, "target": None, "cold_ratio": 0.2},
    # unseen_users: who scores a user MF never saw in training, "popularity" (the declared fallback)
    # or "mean_user" (MF's own guess: the mean warm user, cdtl.models.transfer.MeanUser)
    "model": {"name": "mf", "loss": "bpr", "dim": 64, "dropout": 0.0, "reg": 0.0, "init_std": 0.01,
              "n_negatives": None, "sampler": "uniform", "sparse": False, "unseen_users": "popularity"},
    "batches": {"batch_size": 2048},
    "train": train_section(),
    "evaluate": {"metrics": ["recall@10", "ndcg@10"], "bootstrap": 1000, "batch_size": 2048, "threshold": 4.0},
}
PROTOCOLS = ("per_user", "random", "cold_start")
MODELS = ("mf", "popularity")
UNSEEN_USERS = ("popularity", "mean_user")
RATING_METRICS = ("mae", "rmse", "like_precision", "like_recall", "like_f1")


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice, so a bad config fails before any data is loaded."""
    cfg = merge_config(DEFAULTS, {k: v for k, v in config.items() if k != "kind"}, "", kind="single")
    if cfg["protocol"]["name"] not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {preview(cfg['protocol']['name'])}; valid choices: {', '.join(PROTOCOLS)}")
    model = cfg["model"]
    if model["name"] not in MODELS:
        raise ConfigError(f"unknown model {preview(model['name'])}; valid choices: {', '.join(MODELS)}")
    if model["name"] == "mf" and model["loss"] not in LOSSES:
        raise ConfigError(f"unknown model.loss {preview(model['loss'])}; valid choices: {', '.join(LOSSES)}")
    if model["unseen_users"] not in UNSEEN_USERS:
        raise ConfigError(f"unknown model.unseen_users {preview(model['unseen_users'])}; valid choices: "
                          f"{', '.join(UNSEEN_USERS)}")
    for n, metric in enumerate(cfg["evaluate"]["metrics"]):
        if not (isinstance(metric, str) and (RANKING.match(metric) or metric in RATING_METRICS)):
            raise ConfigError(f"unknown metric {preview(metric)} in evaluate.metrics[{n}]; valid choices: {RANKING_CHOICES}, "
                              f"{', '.join(RATING_METRICS)}")
    rating = [m for m in cfg["evaluate"]["metrics"] if m in RATING_METRICS]
    if rating and not (model["name"] == "mf" and model["loss"] == "mse"):
        raise ConfigError(f"rating metrics {rating} need a model trained on ratings (model.loss: mse)")
    if model["name"] == "mf" and model["loss"] == "mse" and cfg["protocol"]["name"] != "random":
        raise ConfigError("model.loss: mse is evaluated on held-out ratings: use protocol.name: random")
    check_train(cfg["train"], "train")
    validated = ["rmse", "mae"] if rating else [m for m in cfg["evaluate"]["metrics"] if RANKING.match(m)]
    monitor = cfg["train"]["monitor"]
    if monitor is not None and monitor not in validated:
        raise ConfigError(f"train.monitor {preview(monitor)} is not a validation metric of this run; choose one of "
                          f"{', '.join(validated)} (validation computes evaluate.metrics)")
    return cfg


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """``config`` sized for a profile: at most ``profile.epochs`` epochs and ``profile.bootstrap`` resamples."""
    config = copy.deepcopy(config)
    config.setdefault("train", {})
    config["train"]["epochs"] = min(int(config["train"].get("epochs", profile.epochs)), profile.epochs)
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap
    return config


@dataclass
class Prepared:
    """Interactions encoded to contiguous indices, split by the protocol."""

    users: IdMap
    items: IdMap
    parts: dict[str, pd.DataFrame]  # train / val / test with integer columns u, i
    has_ratings: bool
    rating_scale: tuple[float, float] | None = None


def prepare(cfg: dict[str, Any], data: Any = None) -> Prepared:
    """Load the dataset (or take ``data``), pick a domain if asked, split by the protocol and encode ids."""
    ds = cfg["dataset"]
    data = load(ds["name"], ds["domains"]) if data is None else data
    inter = data.interactions
    if ds["domain"] is not None:
        if ds["domain"] not in data.domains:
            raise ConfigError(f"dataset.domain {preview(ds['domain'])} is not one of {data.domains}")
        inter = inter[inter["domain"] == ds["domain"]].reset_index(drop=True)
    if any(m in RATING_METRICS for m in cfg["evaluate"]["metrics"]) and not data.has_ratings:
        raise ConfigError(f"{data.name} has no ratings: rating metrics (mae, rmse, like_*) cannot be computed")
    proto = cfg["protocol"]
    catalogue = data.items
    if proto["name"] == "per_user":
        train, val, test = per_user_split(inter, tuple(proto["fractions"]), seed=cfg["seed"])
    elif proto["name"] == "random":
        train, val, test = random_split(inter, test=proto["test"], val=proto["val"], seed=cfg["seed"])
    else:  # cold_start: a single-domain model sees only the target domain's training data
        if not (proto["source"] and proto["target"]):
            raise ConfigError("protocol cold_start needs protocol.source and protocol.target (domain names)")
        split = cold_start_split(data, proto["source"], proto["target"], proto["cold_ratio"], seed=cfg["seed"])
        train, val, test = split.domain_train(proto["target"]), split.val, split.test
        inter = inter[inter["domain"] == proto["target"]]
        catalogue = catalogue[catalogue["domain"] == proto["target"]]
    users, items = IdMap.fit(inter["user"]), IdMap.fit(catalogue["item"])
    parts = {}
    for name, part in (("train", train), ("val", val), ("test", test)):
        part = part.copy()
        part["u"], part["i"] = users.encode(part["user"]), items.encode(part["item"])
        parts[name] = part
    return Prepared(users, items, parts, data.has_ratings, rating_scale(data))


def _batches(cfg: dict[str, Any], prep: Prepared, train_csr: Any):
    model, size, train = cfg["model"], cfg["batches"]["batch_size"], prep.parts["train"]
    u, i = train["u"].to_numpy(), train["i"].to_numpy()
    if model["loss"] == "mse":
        return rating_batches(u, i, train["rating"].to_numpy(np.float32), size)
    if model["loss"] == "bpr":
        return bpr_batches(u, i, len(prep.items), size, train_csr, n_negatives=model["n_negatives"] or 1)
    n_neg = model["n_negatives"] if model["loss"] == "sampled_softmax" else None
    if model["loss"] == "sampled_softmax" and not n_neg:
        raise ConfigError("model.loss: sampled_softmax needs model.n_negatives (e.g. 256)")
    return softmax_batches(u, i, len(prep.items), size, n_negatives=n_neg, sampler=model["sampler"])


def _fit_mf(cfg: dict[str, Any], prep: Any, train_csr: Any, popularity: Popularity,
            train_cfg: TrainConfig) -> tuple[MF, Any, Any]:
    """Train MF with early stopping on the validation part; (model, its scorer with the unseen-user rule, the fit result)."""
    val, evaluation = prep.parts["val"], cfg["evaluate"]
    ranking = [m for m in evaluation["metrics"] if RANKING.match(m)]
    rating = [m for m in evaluation["metrics"] if m in RATING_METRICS]
    train = prep.parts["train"]
    n_users, n_items = len(prep.users), len(prep.items)
    m = cfg["model"]
    global_mean = float(train["rating"].mean()) if m["loss"] == "mse" else 0.0
    model = MF(n_users, n_items, m["dim"], loss=m["loss"], dropout=m["dropout"], reg=m["reg"],
               init_std=m["init_std"], global_mean=global_mean, sparse=m["sparse"],
               rating_scale=prep.rating_scale if m["loss"] == "mse" else None)
    device = choose_device(train_cfg.device)
    unseen = torch.from_numpy(np.diff(train_csr.indptr) == 0)  # users with no training interaction
    warm = np.flatnonzero(~unseen.numpy())

    def scorer(u: torch.Tensor) -> torch.Tensor:
        """MF scores; a user MF never saw in training gets popularity or the mean warm user (model.unseen_users)."""
        scores = model.score_all(u.to(device)).float().cpu()
        lacking = unseen[u]
        if not lacking.any():
            return scores
        if m["unseen_users"] == "popularity":
            return torch.where(lacking.unsqueeze(1), popularity.counts.expand_as(scores), scores)
        scores[lacking] = MeanUser(model, warm).score_all(u[lacking]).float().cpu()  # from the current weights
        return scores

    def validate(_: torch.nn.Module) -> dict[str, float]:
        if rating:
            res = rate_pairs(model.predict, val, evaluation["threshold"])
            return {"rmse": res["rmse"], "mae": res["mae"]}
        per_user = rank_users(scorer, val, ranking, train_csr, evaluation["batch_size"], shard=distributed.active())
        return {k: float(v.mean()) for k, v in per_user.items() if k != "users"}

    settings = {k: cfg[k] for k in ("seed", "dataset", "protocol", "model", "batches", "evaluate")}
    result = fit(model, _batches(cfg, prep, train_csr), train_cfg, validate if len(val) else None,
                 fingerprint=run_fingerprint(settings, prep.parts))
    return model, scorer, result


def _test(cfg: dict[str, Any], prep: Any, scorer: Any, model: Any, seen_csr: Any) -> tuple[dict[str, Any], Any]:
    """Score the test part once: (metrics with bootstrap intervals, the per-user ranking table or None)."""
    test, evaluation = prep.parts["test"], cfg["evaluate"]
    ranking = [m for m in evaluation["metrics"] if RANKING.match(m)]
    rating = [m for m in evaluation["metrics"] if m in RATING_METRICS]
    metrics: dict[str, Any] = {}
    table = None
    if ranking:
        per_user = rank_users(scorer, test, ranking, seen_csr, evaluation["batch_size"], shard=distributed.active())
        metrics.update(report(per_user, evaluation["bootstrap"], cfg["seed"]))
        table = pd.DataFrame({"model": cfg["model"]["name"], "user": prep.users.decode(per_user.pop("users")), **per_user})
    if rating:
        res = rate_pairs(model.predict, test, evaluation["threshold"])
        metrics.update(rating_report(res, rating, evaluation["bootstrap"], cfg["seed"]))
    return metrics, table


def run(config: dict[str, Any], out_dir: str | os.PathLike | None = None, *, data: Any = None,
        overwrite: bool = False) -> Result:
    """Train and test the model; return the ``Result`` (and write ``out_dir/metrics.json`` when given).

    ``data`` (a ``RecData``, e.g. from ``cdtl.data.load_tables``) replaces the config's dataset;
    ``out_dir`` must not hold an earlier run unless ``overwrite``.
    """
    config = {k: v for k, v in config.items() if k != "kind"}
    started = time.perf_counter()
    cfg = resolve(config)
    out = prepare_output(out_dir, overwrite)
    set_seed(cfg["seed"])
    prep = prepare(cfg, data)
    n_users, n_items = len(prep.users), len(prep.items)
    check_cutoffs(cfg["evaluate"]["metrics"], n_items)  # before any training
    train, val, test = prep.parts["train"], prep.parts["val"], prep.parts["test"]
    train_csr = interaction_matrix(train["u"].to_numpy(), train["i"].to_numpy(), n_users, n_items)
    seen_csr = interaction_matrix(np.concatenate([train["u"], val["u"]]), np.concatenate([train["i"], val["i"]]),
                                  n_users, n_items)
    train_cfg = TrainSection.of(cfg["train"]).train_config(cfg["seed"])
    history: list[dict[str, Any]] = []
    best_epoch = None
    popularity = Popularity(train["i"].to_numpy(), n_items)

    if cfg["model"]["name"] == "popularity":
        scorer, model = popularity.score_all, None
    else:
        model, scorer, result = _fit_mf(cfg, prep, train_csr, popularity, train_cfg)
        history, best_epoch = result.history, result.best_epoch
    metrics, table = _test(cfg, prep, scorer, model, seen_csr)

    epoch_seconds = [h["seconds"] for h in history]
    summary = {
        "name": cfg["name"],
        "config": cfg,
        "seed": cfg["seed"],
        "counts": {"users": n_users, "items": n_items, **{k: int(len(v)) for k, v in prep.parts.items()},
                   "test_users_unseen_in_training": int(np.isin(test["u"].unique(), np.flatnonzero(
                       np.diff(train_csr.indptr) == 0)).sum())},
        "metrics": metrics,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "mean_epoch_seconds": float(np.mean(epoch_seconds)) if epoch_seconds else None,
        "history": history,
        "versions": versions(),
        "device": str(choose_device(train_cfg.device)),
        "wall_seconds": time.perf_counter() - started,
    }
    if out is not None and distributed.is_main():  # under torchrun, rank 0 writes metrics.json once
        write_results(out, summary, table)
    return Result(summary, models={cfg["model"]["name"]: model if model is not None else popularity}, per_user=table,
                  data=prep)


def format_table(summary: dict[str, Any]) -> str:
    """A plain-text table of the test metrics with their 95 % intervals."""
    lines = [f"{summary['name']}  (seed {summary['seed']}, {summary['epochs_run']} epochs, best epoch "
             f"{summary['best_epoch']}, {summary['wall_seconds']:.1f} s on {summary['device']})",
             f"{'metric':<16}{'test':>10}{'95% CI':>22}{'n':>8}"]
    for name, m in summary["metrics"].items():
        ci = f"[{m['low']:.4f}, {m['high']:.4f}]" if "low" in m else "-"
        lines.append(f"{name:<16}{m['mean']:>10.4f}{ci:>22}{m['n']:>8}")
    return "\n".join(lines)
