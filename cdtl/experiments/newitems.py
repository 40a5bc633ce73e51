"""The new-item comparison of chapter 05 (``kind: newitems``): every model on the 2x2 of warm/cold users and old/new
items, by new-item ratio."""

from __future__ import annotations

import copy
import os
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.configfile import check_cutoffs, preview
from cdtl.data import load
from cdtl.data.coldstart import ColdStartSplit
from cdtl.data.crossdomain import CrossDomainData, encode_split
from cdtl.data.newitems import ORDERS, new_item_split
from cdtl.data.sampling import sample_users
from cdtl.encoders.users import mean_pool
from cdtl.evaluate import report
from cdtl.experiments.common import (
    ENCODERS,
    TEXT,
    TUNING,
    ConfigError,
    Result,
    check_choices,
    check_ranking_metrics,
    check_tuning,
    item_vectors,
    merge_config,
    prepare_output,
    scored_once,
    size_text,
    summary_of,
    versions,
    write_results,
)
from cdtl.experiments.newitems_models import (
    CELLS,
    MODELS,
    TEXT_MODELS,
    NewItemBench,
    evaluate_cell,
    score_validation,
)
from cdtl.experiments.sections import TrainSection, mf_section
from cdtl.experiments.transfer_models import LM_BRIDGE, POOLINGS
from cdtl.models.text_only import TextOnly

_TRAIN = TrainSection.flat(lr=0.003, epochs=30, patience=3, batch_size=1024)  # how each of its models trains
DEFAULTS: dict[str, Any] = {
    "kind": "newitems",
    "name": "newitems",
    "seeds": [0],
    "dataset": {"name": "movielens-100k", "domains": "genre", "sample_users": None},
    # by: year | first_interaction | random; cold_ratio: chapter 04's cold users (0: none); holdout: of a warm user's old items
    "protocol": {"source": "action", "target": "comedy", "by": "year", "ratios": [0.1, 0.2, 0.5], "cold_ratio": 0.2,
                 "holdout": 0.2, "val_fraction": 0.5},
    "models": list(MODELS),
    "encoders": list(ENCODERS),
    "tuned_models": None,  # the text models that also run with the tuned encoder (None: every one)
    "text": dict(TEXT),
    "tuning": {**TUNING, "validate": False},  # validate: keep the epoch of the best validation score
    "mf": mf_section(),
    "knn": {"k": 10, "max_history": 100},
    "dropoutnet": {**_TRAIN, "dim": 64, "hidden": 256, "item_dropout": 0.5, "user_dropout": 0.5, "dropout": 0.1},
    "lm_bridge": {**_TRAIN, **LM_BRIDGE},
    "ptupcdr": {**_TRAIN, "hidden": 128, "max_history": 50},
    "evaluate": {"metrics": ["recall@10", "ndcg@10"], "monitor": "ndcg@10", "bootstrap": 1000, "batch_size": 2048,
                 "per_user": True},
}


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice before any data is loaded."""
    cfg = merge_config(DEFAULTS, config, "")
    check_choices(cfg, {"models": MODELS, "encoders": ENCODERS})
    check_tuning(cfg["tuning"])
    proto = cfg["protocol"]
    if proto["by"] not in ORDERS:
        raise ConfigError(f"protocol.by must be one of {', '.join(ORDERS)}, got {preview(proto['by'])}")
    for ratio in proto["ratios"]:
        if not (isinstance(ratio, (int, float)) and 0 < ratio < 1):
            raise ConfigError(f"protocol.ratios must lie strictly between 0 and 1 (e.g. 0.1, 0.2, 0.5), got {preview(ratio)}")
    metrics = cfg["evaluate"]["metrics"]
    check_ranking_metrics(metrics)
    if cfg["evaluate"]["monitor"] not in metrics or not cfg["evaluate"]["monitor"].startswith("ndcg@"):
        raise ConfigError(f"evaluate.monitor must be an ndcg@K of evaluate.metrics {metrics}, got "
                          f"{preview(cfg['evaluate']['monitor'])}")
    tuned = cfg["tuned_models"]
    if tuned is not None and (not isinstance(tuned, list) or not set(tuned) <= set(TEXT_MODELS)):
        raise ConfigError(f"tuned_models must be null or a list of text models ({', '.join(TEXT_MODELS)}), got {preview(tuned)}")
    if cfg["lm_bridge"]["pooling"] not in POOLINGS:
        raise ConfigError(f"lm_bridge.pooling must be one of {', '.join(POOLINGS)}, got {preview(cfg['lm_bridge']['pooling'])}")
    if cfg["lm_bridge"]["source_task"]:
        raise ConfigError("lm_bridge.source_task is not part of the new-item comparison; leave it false")
    if not cfg["seeds"]:
        raise ConfigError("seeds is empty: give at least one seed, e.g. [0]")
    return cfg


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """``config`` sized for a profile: one seed, its new-item ratios, epoch caps, bootstrap, text length, fine-tuning budget."""
    config = copy.deepcopy(config)
    cfg = resolve(config)
    config["seeds"] = list(profile.seeds[:1])
    config.setdefault("protocol", {})["ratios"] = list(profile.new_item_ratios)
    for section in ("mf", "dropoutnet", "lm_bridge", "ptupcdr"):
        config.setdefault(section, {})["epochs"] = min(int(cfg[section]["epochs"]), profile.epochs)
    size_text(config, profile)
    if cfg["dataset"]["name"].startswith("amazon"):
        config.setdefault("dataset", {})["sample_users"] = profile.amazon_users or None
    return config


def encode(split: Any) -> CrossDomainData:
    """The new-item split indexed like chapter 04's cold-start split (``encode_split``): what the models and cells read."""
    cold = split.cold_users
    return encode_split(ColdStartSplit(data=split.data, source=split.source, target=split.target,
                                       cold_ratio=split.cold_ratio, seed=split.seed, train=split.train, val=split.val,
                                       test=split.test, warm_users=split.warm_users,
                                       val_users=np.intersect1d(split.val_users, cold),
                                       test_users=np.intersect1d(split.test_users, cold)))


def prepare_data(cfg: dict[str, Any], data: Any = None) -> Any:
    """The config's dataset (or ``data``), sampled when the config asks, checked against the protocol."""
    ds, proto = cfg["dataset"], cfg["protocol"]
    data = load(ds["name"], ds["domains"]) if data is None else data
    if ds["sample_users"]:
        data = sample_users(data, int(ds["sample_users"]), seed=cfg["seeds"][0])
    for domain in (proto["source"], proto["target"]):
        if domain not in data.domains:
            raise ConfigError(f"protocol names domain {preview(domain)}, but {data.name} has domains {data.domains}")
    return data


def encoders_of(cfg: dict[str, Any], name: str) -> list[str | None]:
    """The encoders model ``name`` runs with: ``[None]`` for a model without text; tuned only where ``tuned_models`` says."""
    if name not in TEXT_MODELS:
        return [None]
    tuned = cfg["tuned_models"] is None or name in cfg["tuned_models"]
    return [e for e in ENCODERS if e in cfg["encoders"] and (e != "tuned" or tuned)]


def tune_encoder(bench: NewItemBench, cd: Any, split: Any, cfg: dict[str, Any], items: pd.DataFrame,
                 seed: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """(the item vectors of the language model tuned on this split's training histories, what tuning cost); with
    ``tuning.validate`` the epoch whose vectors rank the validation users best (as the two-tower model scores them)."""
    check = None
    if cfg["tuning"]["validate"]:
        recent = [h[-int(cfg["tuning"]["max_history"]):] for h in bench.history]
        rows = bench.rows.numpy()
        score = score_validation(lambda v: TextOnly(v, mean_pool(v, recent, empty="zeros"), candidates=rows).score_all,
                                 cd, split, cfg)
        check = lambda v: score(v)["val"]  # noqa: E731
    return item_vectors(cfg["text"], items, "tuned", tuning=cfg["tuning"], train=split.train, seed=seed, validate=check)


def score_cells(built: Any, row: dict[str, Any], cd: Any, split: Any,
                ev: dict[str, Any]) -> tuple[list[dict[str, Any]], list[pd.DataFrame]]:
    """(a result row per cell of the 2x2, the per-user tables) of one trained model: its test users scored once, a
    new-item cell it cannot serve recorded as not served, and the validation users' means for choosing models."""
    batch, seed = int(ev["batch_size"]), row["seed"]
    scores = {w: scored_once(built.scorer.score_all, cd.held_out(w)["u"].to_numpy(), batch) for w in ("test", "val")}
    rows, per_user = [], []
    for cell in CELLS:
        base = {**row, "cell": cell, "seconds": built.seconds, "users_on_fallback": built.users_on_fallback}
        if cell.endswith("new") and not built.serves_new:
            rows.append({**base, "served": False, "metrics": {}})
            continue
        out = evaluate_cell(scores["test"], cd, split, "test", cell, ev["metrics"], batch)
        if out is None:
            continue
        values = {m: out[m] for m in ev["metrics"]}
        val = evaluate_cell(scores["val"], cd, split, "val", cell, ev["metrics"], batch)  # never the test users
        rows.append({**base, "served": True, "metrics": report(values, int(ev["bootstrap"]), seed),
                     "validation": {m: float(np.mean(val[m])) for m in ev["metrics"]} if val else {}})
        per_user.append(pd.DataFrame({**row, "cell": cell, "user": cd.users.decode(out["users"]), **values}))
    return rows, per_user


def run(config: dict[str, Any], out_dir: str | os.PathLike | None = None, *, data: Any = None,
        vectors: dict[str, Any] | None = None, overwrite: bool = False) -> Result:
    """Train every model at every new-item ratio and seed; score each cell of the 2x2 on the test users once.

    ``vectors`` (``{"frozen": (n_items, D)}``, rows of the data's item table) replaces the
    frozen encoding, e.g. to share one encoding between comparisons. The result's ``models``
    (``{(name, encoder): Built}``) and ``data`` (the split) are the first seed's and ratio's.
    ``out_dir`` must not hold an earlier run unless ``overwrite``.
    """
    started = time.perf_counter()
    cfg = resolve(config)
    results_dir = prepare_output(out_dir, overwrite)
    proto, ev = cfg["protocol"], cfg["evaluate"]
    data = prepare_data(cfg, data)
    text_models = [m for m in cfg["models"] if m in TEXT_MODELS]
    frozen = None
    if text_models and "frozen" in cfg["encoders"]:
        frozen = (vectors or {}).get("frozen")
        frozen = item_vectors(cfg["text"], data.items)[0] if frozen is None else frozen
    rows, per_user, splits, tunings, kept = [], [], [], [], Result({})
    for seed in cfg["seeds"]:
        for ratio in proto["ratios"]:
            split = new_item_split(data, proto["target"], ratio, source=proto["source"], by=proto["by"],
                                   cold_ratio=proto["cold_ratio"], holdout=proto["holdout"],
                                   val_fraction=proto["val_fraction"], seed=seed)
            check_cutoffs(ev["metrics"], len(split.new_items))  # the new-item cells rank the new items only
            cd = encode(split)
            splits.append(split.summary())
            bench = NewItemBench(cd, split, cfg, seed, {} if frozen is None else {"frozen": frozen})
            if any("tuned" in encoders_of(cfg, m) for m in text_models):
                bench.vectors["tuned"], cost = tune_encoder(bench, cd, split, cfg, data.items, seed)
                tunings.append({**cost, "ratio": ratio})
            first = seed == cfg["seeds"][0] and ratio == proto["ratios"][0]
            if first:
                kept.data = split
            for name in cfg["models"]:
                for encoder in encoders_of(cfg, name):
                    built = bench.build(name, encoder)
                    if first:
                        kept.models[(name, encoder)] = built
                    cells, users = score_cells(built, {"seed": seed, "ratio": ratio, "model": name, "encoder": encoder},
                                               cd, split, ev)
                    rows += cells
                    per_user += users if ev["per_user"] else []
    summary = {"name": cfg["name"], "kind": "newitems", "config": cfg, "rows": rows, "splits": splits,
               "tuning": tunings, "versions": versions(), "wall_seconds": time.perf_counter() - started}
    table_per_user = pd.concat(per_user, ignore_index=True) if per_user else None
    if results_dir is not None:
        write_results(results_dir, summary, table_per_user)
    return Result(summary, kept.models, table_per_user, kept.data)


def table(summary: dict[str, Any] | Result, metric: str = "ndcg@10") -> pd.DataFrame:
    """One row per (ratio, model, encoder, cell) of the first seed: the test users' mean and interval of ``metric``.

    ``val`` is the validation users' mean (for choosing a model); NaN where the model cannot serve.
    """
    records = []
    for row in summary_of(summary)["rows"]:
        m = row["metrics"].get(metric, {})
        records.append({"ratio": row["ratio"], "seed": row["seed"], "model": row["model"],
                        "encoder": row["encoder"] or "", "cell": row["cell"], "served": row["served"],
                        "mean": m.get("mean", np.nan), "low": m.get("low", np.nan), "high": m.get("high", np.nan),
                        "val": row.get("validation", {}).get(metric, np.nan)})
    frame = pd.DataFrame(records)
    frame["label"] = frame["model"] + np.where(frame["encoder"] != "", " [" + frame["encoder"] + "]", "")
    return frame[frame["seed"] == frame["seed"].min()].drop(columns="seed").reset_index(drop=True)


def format_table(summary: dict[str, Any] | Result, metric: str = "ndcg@10") -> str:
    """Per ratio: models (by encoder) down, cells of the 2x2 across, ``mean [95% CI]`` or ``cannot serve``."""
    summary = summary_of(summary)
    frame = table(summary, metric)
    lines = [f"{summary['name']}  ({metric} on test users, {summary['wall_seconds']:.0f} s)"]
    for ratio, part in frame.groupby("ratio", sort=True):
        cells = [c for c in CELLS if c in set(part["cell"])]
        lines += ["", f"new items {ratio:.0%}".ljust(26) + "".join(f"{c:>22}" for c in cells)]
        for (model, encoder), rows in part.groupby(["model", "encoder"], sort=False):
            label = f"{model} [{encoder}]" if encoder else model
            out = []
            for c in cells:
                r = rows[rows["cell"] == c]
                if r.empty:
                    out.append(f"{'-':>22}")
                elif not bool(r["served"].iloc[0]):
                    out.append(f"{'cannot serve':>22}")
                else:
                    r = r.iloc[0]
                    out.append(f"{r['mean']:.4f} [{r['low']:.3f},{r['high']:.3f}]".rjust(22))
            lines.append(f"{label:<26}" + "".join(out))
    for t in summary.get("tuning", []):
        lines.append(f"\ntuned encoder (seed {t['seed']}, ratio {t['ratio']}): {t['train_seconds']:.0f} s fine-tuning on "
                     f"{t['users']} users, {t['encode_seconds']:.0f} s encoding{' (cached)' if t['from_cache'] else ''}")
    return "\n".join(lines)


__all__ = ["CELLS", "DEFAULTS", "MODELS", "TEXT_MODELS", "encode", "encoders_of", "format_table", "prepare_data",
           "resolve", "run", "size", "table"]
