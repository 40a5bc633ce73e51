"""The cross-domain comparison of chapter 04 (``kind: transfer``): every transfer model, at every cold ratio and
seed, scored on the same cold users."""

from __future__ import annotations

import copy
import os
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.beyond_accuracy import beyond_accuracy, item_counts
from cdtl.configfile import check_cutoffs, preview
from cdtl.data import cold_start_split, load
from cdtl.data.crossdomain import CrossDomainData, encode_split
from cdtl.data.sampling import sample_users
from cdtl.encoders.language_model import check_loadable
from cdtl.evaluate import rating_report, report, top_k
from cdtl.experiments.common import (
    ENCODERS,
    TUNING,
    ConfigError,
    Result,
    check_choices,
    check_ranking_metrics,
    check_tuning,
    constructor_defaults,
    item_vectors,
    merge_config,
    prepare_output,
    rating_scale,
    summary_of,
    tuning_for,
    versions,
    write_results,
)
from cdtl.experiments.sections import TextSection, TrainSection, mf_section
from cdtl.experiments.transfer_models import (
    LM_BRIDGE,
    MODELS,
    POOLINGS,
    RANKING_ONLY,
    SOURCE_MF_MODELS,
    TEXT_MODELS,
    FallbackScorer,
    TransferTrainer,
    evaluate_users,
    train_domain_mf,
)
from cdtl.models.mf import MF
from cdtl.models.transfer import CMF, EMCDR, PTUPCDR

TASKS = ("ranking", "rating")  # ranking: BPR-trained models, Recall/NDCG; rating: MSE-trained models, MAE/RMSE
RATING_METRICS = ("mae", "rmse")

_MF = mf_section()
# how a bridge trains; ranking_loss: how a bridge trained for ranking learns, "bpr" (pairs) or "softmax"
# (one class among all items). A model's own hyper-parameters default to its constructor's.
_BRIDGE = {**TrainSection.flat(epochs=30, patience=3, batch_size=1024), "ranking_loss": "bpr"}
DEFAULTS: dict[str, Any] = {
    "kind": "transfer",
    "name": "transfer",
    "seeds": [0],
    # sample_users: a quick run on that many users active in both domains (and no other user)
    "dataset": {"name": "movielens-100k", "domains": "genre", "sample_users": None},
    "protocol": {"source": "action", "target": "comedy", "cold_ratios": [0.2], "val_fraction": 0.5},
    "models": list(MODELS),
    "tasks": list(TASKS),
    "mf": {"ranking": dict(_MF), "rating": {**_MF, "lr": 0.002, "reg": 0.05}},  # per-domain MF of each task
    "mapping": {**_BRIDGE, **constructor_defaults(EMCDR, "hidden"), "lr": 0.005, "epochs": 100, "patience": 5,
                "batch_size": 256},  # EMCDR
    # bridges trained for ranking use the full softmax (better than BPR on validation users, chapter 04)
    "ptupcdr": {**_BRIDGE, **constructor_defaults(PTUPCDR, "hidden"), "lr": 0.003, "rating_lr": 0.001, "patience": 5,
                "ranking_loss": "softmax", "max_history": 50},
    "cmf": {**_MF, **constructor_defaults(CMF, "alpha"), "patience": 3, "rating_lr": 0.002, "rating_reg": 0.05},  # reg as in MF
    "lm_bridge": {**_BRIDGE, **LM_BRIDGE, "lr": 0.003, "rating_lr": 0.001, "patience": 5, "ranking_loss": "softmax"},
    # the language model (null: the packaged MiniLM), its text length, and encoder: frozen, or tuned on each split's
    # training histories of both domains with the ``tuning`` settings (cdtl.models.tuned_encoder)
    "text": TextSection.defaults(encoder="frozen"),
    "tuning": dict(TUNING),
    "evaluate": {"metrics": ["recall@10", "ndcg@10"], "bootstrap": 1000, "batch_size": 2048, "per_user": True},
}


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice before any data is loaded."""
    cfg = merge_config(DEFAULTS, config, "")
    check_choices(cfg, {"models": MODELS, "tasks": TASKS})
    check_tuning(cfg["tuning"])
    check_ranking_metrics(cfg["evaluate"]["metrics"], hint="; rating errors (mae, rmse) come with tasks: [rating]")
    for ratio in cfg["protocol"]["cold_ratios"]:
        if not (isinstance(ratio, (int, float)) and 0 < ratio < 1):
            raise ConfigError(f"protocol.cold_ratios must lie strictly between 0 and 1, got {preview(ratio)}")
    if not cfg["seeds"]:
        raise ConfigError("seeds is empty: give at least one seed, e.g. [0]")
    for section in ("mapping", "ptupcdr", "lm_bridge"):
        if cfg[section]["ranking_loss"] not in ("bpr", "softmax"):
            raise ConfigError(f"{section}.ranking_loss must be 'bpr' or 'softmax', got {preview(cfg[section]['ranking_loss'])}")
    if cfg["lm_bridge"]["pooling"] not in POOLINGS:
        raise ConfigError(f"lm_bridge.pooling must be one of {', '.join(POOLINGS)}, got {preview(cfg['lm_bridge']['pooling'])}")
    if cfg["text"]["encoder"] not in ENCODERS:
        raise ConfigError(f"text.encoder must be one of {', '.join(ENCODERS)}, got {preview(cfg['text']['encoder'])}")
    return cfg


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """``config`` sized for a profile: its seeds, cold ratios, epoch cap, bootstrap and text length."""
    config = copy.deepcopy(config)
    cfg = resolve(config)
    config["seeds"] = list(profile.seeds)
    config.setdefault("protocol", {})["cold_ratios"] = list(profile.cold_ratios)
    for section in ("mapping", "ptupcdr", "cmf", "lm_bridge"):
        config.setdefault(section, {})["epochs"] = min(int(cfg[section]["epochs"]), profile.epochs)
    for task in TASKS:
        config.setdefault("mf", {}).setdefault(task, {})["epochs"] = min(int(cfg["mf"][task]["epochs"]), profile.epochs)
    TextSection.size(config, profile)
    config["tuning"] = {**config.get("tuning", {}), **tuning_for(profile, config.get("tuning"))}
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap
    if cfg["dataset"]["name"].startswith("amazon"):  # the Amazon pair is sampled for quick profiles
        config.setdefault("dataset", {})["sample_users"] = profile.amazon_users or None
    return config


# --------------------------------------------------------------------------- the comparison


def item_text_vectors(cfg: dict[str, Any], items: pd.DataFrame, train: pd.DataFrame | None = None,
                      seed: int = 0) -> tuple[torch.Tensor, dict[str, Any] | None]:
    """(the language-model vector of every item, row r for ``items`` row r; what tuning cost, or None).

    With ``text.encoder: tuned`` the item tower is fine-tuned on ``train`` (a split's training
    interactions of both domains) first; both encoders are cached on disk.
    """
    return item_vectors(cfg["text"], items, cfg["text"]["encoder"], tuning=cfg["tuning"], train=train, seed=seed)


def prepare_data(cfg: dict[str, Any], data: Any = None) -> Any:
    """The config's dataset (or ``data``), sampled when the config asks, checked against the protocol and tasks."""
    ds, proto = cfg["dataset"], cfg["protocol"]
    data = load(ds["name"], ds["domains"]) if data is None else data
    if ds["sample_users"]:
        data = sample_users(data, int(ds["sample_users"]), seed=cfg["seeds"][0], bridge_only=True)
    for domain in (proto["source"], proto["target"]):
        if domain not in data.domains:
            raise ConfigError(f"protocol names domain {preview(domain)}, but {data.name} has domains {data.domains}")
    if "rating" in cfg["tasks"] and not data.has_ratings:
        raise ConfigError(f"{data.name} has no ratings (implicit feedback): rating metrics (mae, rmse) cannot be "
                          "computed; use tasks: [ranking]")
    return data


def score_model(scorer: FallbackScorer, cd: CrossDomainData, task: str, cfg: dict[str, Any],
                seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(metrics with intervals, per-user values) of a trained model on the test cold users."""
    out = evaluate_users(scorer, cd, "test", task, cfg)
    boot = cfg["evaluate"]["bootstrap"]
    if task == "ranking":
        values = {m: out[m] for m in cfg["evaluate"]["metrics"]}
        return report(values, boot, seed), {"users": out["users"], **values}
    per_user = out["result"]["per_user"]
    values = {"mae": per_user["abs_error"], "rmse": np.sqrt(per_user["sq_error"])}
    return rating_report(out["result"], RATING_METRICS, boot, seed), {"users": out["users"], **values}


def validation_means(scorer: FallbackScorer, cd: CrossDomainData, task: str, cfg: dict[str, Any]) -> dict[str, float]:
    """The validation cold users' mean of every metric: what choosing among models (or their settings) may read."""
    out = evaluate_users(scorer, cd, "val", task, cfg)
    if task == "ranking":
        return {m: float(np.mean(out[m])) for m in cfg["evaluate"]["metrics"]}
    return {m: float(out["result"][m]) for m in RATING_METRICS}


def make_split(data: Any, proto: dict[str, Any], ratio: float, seed: int) -> tuple[Any, CrossDomainData]:
    """(the cold-start split at ``ratio`` and ``seed``, its cross-domain encoding)."""
    split = cold_start_split(data, proto["source"], proto["target"], ratio, seed=seed, val_fraction=proto["val_fraction"])
    return split, encode_split(split)


def describe_split(split: Any, cd: CrossDomainData, seed: int) -> dict[str, Any]:
    """What metrics.json says of one split: its counts, its encoding, and the cold users with no source history."""
    cold = np.concatenate([cd.val_users, cd.test_users])
    return {"seed": seed, **split.summary(), "encoded": cd.summary(),
            "cold_users_without_source_history": int((~cd.has_source()[cold]).sum())}


def run_task(trainer: TransferTrainer, cd: CrossDomainData, task: str, cfg: dict[str, Any],
             row: dict[str, Any]) -> tuple[list[dict[str, Any]], list[pd.DataFrame], dict[str, FallbackScorer]]:
    """(a result row per model, the per-user tables, the trained scorers) of every model of one task in one split:
    each trained, scored once on the test cold users, and read on the validation cold users for choosing models."""
    rows, per_user, scorers = [], [], {}
    for name in cfg["models"]:
        if task == "rating" and name in RANKING_ONLY:
            continue  # popularity and the loss-swapped rows rank, they do not predict ratings
        tick = time.perf_counter()
        scorers[name] = scorer = trainer.build(name)
        metrics, values = score_model(scorer, cd, task, cfg, row["seed"])
        rows.append({**row, "model": name, "seconds": time.perf_counter() - tick, "metrics": metrics,
                     "validation": validation_means(scorer, cd, task, cfg)})
        if cfg["evaluate"]["per_user"]:
            per_user.append(pd.DataFrame({**row, "model": name, "user": cd.users.decode(values.pop("users")), **values}))
    return rows, per_user, scorers


def run(config: dict[str, Any], out_dir: str | os.PathLike | None = None, *, data: Any = None,
        overwrite: bool = False) -> Result:
    """Run every model at every cold ratio and seed; return the ``Result`` (and write metrics.json, per_user.csv).

    ``data`` (a two-domain ``RecData``, e.g. from ``cdtl.data.load_tables``) replaces the
    config's dataset: your own data through the same protocol and models. The result's
    ``models`` (``{(task, name): FallbackScorer}``) and ``data`` (the encoded split) are
    those of the first seed and cold ratio, to look inside them. ``out_dir`` must not hold an
    earlier run unless ``overwrite``.
    """
    started = time.perf_counter()
    cfg = resolve(config)
    out = prepare_output(out_dir, overwrite)
    proto = cfg["protocol"]
    if any(m in cfg["models"] for m in TEXT_MODELS):
        check_loadable(cfg["text"]["model"], "text.model")  # an unknown or unreachable model fails before any data
    data = prepare_data(cfg, data)
    check_cutoffs(cfg["evaluate"]["metrics"], int((data.items["domain"] == proto["target"]).sum()))
    needs_text = any(m in cfg["models"] for m in TEXT_MODELS)
    tuned = cfg["text"]["encoder"] == "tuned"
    text = item_text_vectors(cfg, data.items)[0] if needs_text and not tuned else None
    needs_source = any(m in cfg["models"] for m in SOURCE_MF_MODELS)
    rows, per_user, splits, tunings, kept = [], [], [], [], Result({})
    for seed in cfg["seeds"]:
        source_mfs: dict[str, MF] = {}  # the source MF does not depend on the cold ratio: train it once per seed
        for ratio in proto["cold_ratios"]:
            split, cd = make_split(data, proto, ratio, seed)
            splits.append(describe_split(split, cd, seed))
            first_cell = seed == cfg["seeds"][0] and ratio == proto["cold_ratios"][0]
            if needs_text and tuned:  # tuned on this split's training interactions: no cold user's target history
                text, cost = item_text_vectors(cfg, data.items, split.train, seed)
                tunings.append({**cost, "cold_ratio": ratio})
            for task in cfg["tasks"]:
                if needs_source and task not in source_mfs:
                    source_mfs[task] = train_domain_mf(cd.source_train, cd.n_users, cd.n_source_items, task,
                                                       cfg["mf"][task], seed,
                                                       rating_scale(cd) if task == "rating" else None)
                trainer = TransferTrainer(cd, task, cfg, seed, source_mfs.get(task), text)
                cell, users, scorers = run_task(trainer, cd, task, cfg, {"seed": seed, "cold_ratio": ratio, "task": task})
                rows += cell
                per_user += users
                if first_cell:
                    kept.data = cd
                    kept.models.update({(task, name): scorer for name, scorer in scorers.items()})
    summary = {
        "name": cfg["name"],
        "kind": "transfer",
        "config": cfg,
        "rows": rows,
        "splits": splits,
        "tuning": tunings,
        "versions": versions(),
        "wall_seconds": time.perf_counter() - started,
    }
    table_per_user = pd.concat(per_user, ignore_index=True) if per_user else None
    if out is not None:
        write_results(out, summary, table_per_user)
    return Result(summary, kept.models, table_per_user, kept.data)


def table(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per (task, metric, model), one column per cold ratio: mean over seeds, and the first seed's interval."""
    summary, records = summary_of(summary), []
    for row in summary["rows"]:
        for metric, m in row["metrics"].items():
            records.append({"task": row["task"], "metric": metric, "model": row["model"], "cold_ratio": row["cold_ratio"],
                            "seed": row["seed"], "mean": m["mean"], "low": m.get("low"), "high": m.get("high")})
    frame = pd.DataFrame(records)
    order = {name: k for k, name in enumerate(MODELS)}
    frame["order"] = frame["model"].map(order)
    return frame.sort_values(["task", "metric", "order", "cold_ratio", "seed"]).drop(columns="order").reset_index(drop=True)


def beyond_accuracy_table(result: Result, k: int = 10, top_fraction: float = 0.2) -> pd.DataFrame:
    """Per ranking model of the result's first seed and cold ratio: what its top ``k`` lists for the test users hold.

    ``coverage@k`` (share of the target catalogue recommended to anyone), ``novelty@k`` (mean
    self-information of the recommended comedies, bits, from the training counts) and
    ``popular@k`` (share of recommended items among the ``top_fraction`` most popular), via
    ``cdtl.beyond_accuracy``.
    """
    cd = result.data
    counts = item_counts(cd.target_train["i"].to_numpy(), cd.n_target_items)
    rows = {}
    for (task, name), scorer in result.models.items():
        if task == "ranking":
            top = top_k(scorer.score_all, np.sort(cd.test_users), k)
            out = beyond_accuracy(top, counts, top_fraction)
            rows[name] = {f"coverage@{k}": out["coverage"], f"novelty@{k}": float(out["novelty"].mean()),
                          f"popular@{k}": float(out["popular_share"].mean())}
    return pd.DataFrame(rows).T


def format_table(summary: dict[str, Any]) -> str:
    """All models by cold ratio, per metric: ``mean [95% CI]`` (the mean over seeds when there are several)."""
    summary = summary_of(summary)
    frame = table(summary)
    seeds = sorted(frame["seed"].unique())
    lines = [f"{summary['name']}  ({len(seeds)} seed(s) {seeds}, {summary['wall_seconds']:.0f} s)"]
    for (task, metric), part in frame.groupby(["task", "metric"], sort=False):
        ratios = sorted(part["cold_ratio"].unique())
        lines.append("")
        lines.append(f"{metric} ({task}, cold test "
                     "users)".ljust(26) + "".join(f"{'cold ' + format(r, '.0%'):>26}" for r in ratios))
        for model, by_model in part.groupby("model", sort=False):
            cells = []
            for r in ratios:
                here = by_model[by_model["cold_ratio"] == r]
                first = here.iloc[0]
                cell = f"{here['mean'].mean():.4f}"
                if len(here) == 1 and first["low"] is not None:
                    cell += f" [{first['low']:.4f}, {first['high']:.4f}]"
                elif len(here) > 1:
                    cell += f" ±{here['mean'].std(ddof=1):.4f}"
                cells.append(f"{cell:>26}")
            lines.append(f"{model:<26}" + "".join(cells))
    return "\n".join(lines)


def fit_model(name: str, cd: CrossDomainData, config: dict[str, Any] | None = None, *, task: str = "ranking",
              seed: int = 0, text: torch.Tensor | None = None) -> FallbackScorer:
    """Train one model of this comparison on an encoded split (for other chapters, e.g. fusion).

    ``config`` is a transfer config (defaults filled in); ``text`` the item text vectors
    aligned with ``cd.split.data.items`` (computed when a text model needs them and it is None).
    Returns a ``FallbackScorer`` with ``score_all(users)`` over the target catalogue.
    """
    cfg = resolve(config or {})
    if name not in MODELS:
        raise ConfigError(f"unknown model {preview(name)}; valid choices: {', '.join(MODELS)}")
    if text is None and name in TEXT_MODELS:
        text = item_text_vectors(cfg, cd.split.data.items, cd.split.train, seed)[0]
    source_mf = None
    if name in SOURCE_MF_MODELS:
        source_mf = train_domain_mf(cd.source_train, cd.n_users, cd.n_source_items, task, cfg["mf"][task],
                                    seed, rating_scale(cd) if task == "rating" else None)
    return TransferTrainer(cd, task, cfg, seed, source_mf, text).build(name)


__all__ = [
    "DEFAULTS", "MODELS", "TASKS", "beyond_accuracy_table", "fit_model", "format_table", "prepare_data", "resolve", "run",
    "size", "table"
]
