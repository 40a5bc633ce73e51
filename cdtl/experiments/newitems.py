"""The new-item comparison of chapter 05: every model on the 2x2 of warm/cold users and old/new items, by new-item ratio."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cdtl.data import load
from cdtl.data.coldstart import ColdStartSplit
from cdtl.data.crossdomain import encode_split
from cdtl.data.newitems import ORDERS, new_item_split
from cdtl.data.sampling import sample_users
from cdtl.evaluate import report
from cdtl.experiment import RANKING, ConfigError, json_default, merge_config, versions
from cdtl.experiments.newitems_models import CELLS, MODELS, TEXT_MODELS, NewItemBench, evaluate_cell
from cdtl.experiments.text_common import ENCODERS, TEXT, TUNING, check_choices, frozen_vectors, mean_text, tuned_vectors
from cdtl.models.text_only import TextOnly

_TRAIN = {"lr": 0.003, "epochs": 30, "patience": 3, "batch_size": 1024, "weight_decay": 0.0}
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
    "text": dict(TEXT),
    "tuning": {**TUNING, "validate": False},  # validate: keep the epoch of the best validation score
    "mf": {"dim": 64, "lr": 0.005, "epochs": 20, "batch_size": 4096, "reg": 0.0, "weight_decay": 0.0, "n_negatives": 1},
    "knn": {"k": 10, "max_history": 100},
    "dropoutnet": {**_TRAIN, "dim": 64, "hidden": 256, "item_dropout": 0.5, "user_dropout": 0.5, "dropout": 0.1},
    "lm": {**_TRAIN, "dim": 64, "hidden": 256, "adaptor": "linear", "dropout": 0.1, "pooling": "mean",
           "max_history": 50},
    "ptupcdr": {**_TRAIN, "hidden": 128, "max_history": 50},
    "evaluate": {"metrics": ["recall@10", "ndcg@10"], "monitor": "ndcg@10", "bootstrap": 1000, "batch_size": 2048,
                 "per_user": True},
}


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice before any data is loaded."""
    cfg = merge_config(DEFAULTS, config, "")
    check_choices(cfg, {"models": MODELS, "encoders": ENCODERS})
    proto = cfg["protocol"]
    if proto["by"] not in ORDERS:
        raise ConfigError(f"protocol.by must be one of {', '.join(ORDERS)}, got {proto['by']!r}")
    for ratio in proto["ratios"]:
        if not (isinstance(ratio, (int, float)) and 0 < ratio < 1):
            raise ConfigError(f"protocol.ratios must lie strictly between 0 and 1 (e.g. 0.1, 0.2, 0.5), got {ratio!r}")
    metrics = cfg["evaluate"]["metrics"]
    for metric in metrics:
        if not RANKING.match(metric):
            raise ConfigError(f"evaluate.metrics lists ranking metrics (recall@K, ndcg@K, ...), got {metric!r}")
    if cfg["evaluate"]["monitor"] not in metrics or not cfg["evaluate"]["monitor"].startswith("ndcg@"):
        raise ConfigError(f"evaluate.monitor must be an ndcg@K of evaluate.metrics {metrics}, got {cfg['evaluate']['monitor']!r}")
    if cfg["lm"]["pooling"] not in ("mean", "attention"):
        raise ConfigError(f"lm.pooling must be 'mean' or 'attention', got {cfg['lm']['pooling']!r}")
    if not cfg["seeds"]:
        raise ConfigError("seeds is empty: give at least one seed, e.g. [0]")
    return cfg


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """``config`` sized for a profile: one seed, its new-item ratios, epoch caps, bootstrap, text length, fine-tuning budget."""
    config = copy.deepcopy(config)
    cfg = resolve(config)
    config["seeds"] = list(profile.seeds[:1])
    config.setdefault("protocol", {})["ratios"] = list(profile.new_item_ratios)
    for section in ("mf", "dropoutnet", "lm", "ptupcdr"):
        config.setdefault(section, {})["epochs"] = min(int(cfg[section]["epochs"]), profile.epochs)
    config.setdefault("text", {}).update(max_length=profile.max_text_length, encode_batch_size=profile.encode_batch_size)
    config.setdefault("tuning", {}).update(
        epochs=profile.finetune_epochs, batch_size=profile.finetune_batch_size, max_history=profile.finetune_max_history,
        freeze_layers=profile.finetune_freeze_layers, max_users=profile.finetune_users or None)
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap
    if cfg["dataset"]["name"].startswith("amazon"):
        config.setdefault("dataset", {})["sample_users"] = profile.amazon_users or None
    return config


def _as_cold_start(split: Any) -> ColdStartSplit:
    """The new-item split seen as a cold-start split, so its ids are indexed like chapter 04's (``encode_split``)."""
    cold = split.cold_users
    return ColdStartSplit(data=split.data, source=split.source, target=split.target, cold_ratio=split.cold_ratio,
                          seed=split.seed, train=split.train, val=split.val, test=split.test,
                          warm_users=split.warm_users, val_users=np.intersect1d(split.val_users, cold),
                          test_users=np.intersect1d(split.test_users, cold))


def _text_validator(cd: Any, split: Any, bench_history: list, rows: Any, cfg: dict[str, Any]):
    """validate(vectors): the two-tower's validation score with these item vectors (for selecting the tuning epoch)."""
    from cdtl.experiments.newitems_models import CELLS as cells

    metric = cfg["evaluate"]["monitor"]
    k = int(metric.split("@")[1])
    recent = [h[-int(cfg["tuning"]["max_history"]):] for h in bench_history]

    def validate(vectors: Any) -> float:
        model = TextOnly(vectors, mean_text(vectors, recent), candidates=rows)
        outs = [evaluate_cell(model.score_all, cd, split, "val", c, [k], int(cfg["evaluate"]["batch_size"]))
                for c in cells[:4]]
        return float(np.mean([np.mean(o[metric]) for o in outs if o is not None]))

    return validate


def run(config: dict[str, Any], out_dir: str | Path | None = None, *, data: Any = None) -> dict[str, Any]:
    """Train every model at every new-item ratio and seed; score each cell of the 2x2 on the test users once."""
    started = time.perf_counter()
    cfg = resolve(config)
    ds, proto, ev = cfg["dataset"], cfg["protocol"], cfg["evaluate"]
    data = load(ds["name"], ds["domains"]) if data is None else data
    if ds["sample_users"]:
        data = sample_users(data, int(ds["sample_users"]), seed=cfg["seeds"][0])
    for domain in (proto["source"], proto["target"]):
        if domain not in data.domains:
            raise ConfigError(f"protocol names domain {domain!r}, but {data.name} has domains {data.domains}")
    text_models = [m for m in cfg["models"] if m in TEXT_MODELS]
    frozen = frozen_vectors(cfg["text"], data.items) if text_models and "frozen" in cfg["encoders"] else None
    ks = sorted({int(RANKING.match(m).group(2)) for m in ev["metrics"]})
    rows, per_user, splits, tunings, kept = [], [], [], [], {}
    for seed in cfg["seeds"]:
        for ratio in proto["ratios"]:
            split = new_item_split(data, proto["target"], ratio, source=proto["source"], by=proto["by"],
                                   cold_ratio=proto["cold_ratio"], holdout=proto["holdout"],
                                   val_fraction=proto["val_fraction"], seed=seed)
            cd = encode_split(_as_cold_start(split))
            splits.append(split.summary())
            vectors = {} if frozen is None else {"frozen": frozen}
            bench = NewItemBench(cd, split, cfg, seed, vectors)
            if text_models and "tuned" in cfg["encoders"]:
                check = _text_validator(cd, split, bench.history, bench.rows.numpy(), cfg) if cfg["tuning"]["validate"] else None
                tuned = tuned_vectors(cfg["text"], cfg["tuning"], data.items, split.train, seed, check)
                vectors["tuned"] = tuned.vectors
                tunings.append({"seed": seed, "ratio": ratio, "train_seconds": tuned.train_seconds,
                                "encode_seconds": tuned.encode_seconds, "users": tuned.users,
                                "from_cache": tuned.from_cache, "history": tuned.history})
            for name in cfg["models"]:
                for encoder in ([e for e in ENCODERS if e in cfg["encoders"]] if name in TEXT_MODELS else [None]):
                    built = bench.build(name, encoder)
                    if seed == cfg["seeds"][0] and ratio == proto["ratios"][0]:
                        kept[(name, encoder)] = built
                    for cell in CELLS:
                        row = {"seed": seed, "ratio": ratio, "model": name, "encoder": encoder, "cell": cell,
                               "seconds": built.seconds, "users_on_fallback": built.users_on_fallback}
                        if cell.endswith("new") and not built.serves_new:
                            rows.append({**row, "served": False, "metrics": {}})
                            continue
                        out = evaluate_cell(built.scorer.score_all, cd, split, "test", cell, ks, int(ev["batch_size"]))
                        if out is None:
                            continue
                        values = {m: out[m] for m in ev["metrics"]}
                        rows.append({**row, "served": True, "metrics": report(values, int(ev["bootstrap"]), seed)})
                        if ev["per_user"]:
                            per_user.append(pd.DataFrame({"seed": seed, "ratio": ratio, "model": name, "encoder": encoder,
                                                          "cell": cell, "user": cd.users.decode(out["users"]), **values}))
    results = {"name": cfg["name"], "kind": "newitems", "config": cfg, "rows": rows, "splits": splits,
               "tuning": tunings, "versions": versions(), "wall_seconds": time.perf_counter() - started}
    if out_dir is not None:
        _write(Path(out_dir), results, per_user)
    results["per_user"] = pd.concat(per_user, ignore_index=True) if per_user else None
    results["models"] = kept
    return results


def _write(out: Path, results: dict[str, Any], per_user: list[pd.DataFrame]) -> None:
    import json
    import os
    import tempfile

    out.mkdir(parents=True, exist_ok=True)
    files = {"metrics.json": json.dumps(results, indent=2, default=json_default)}
    if per_user:
        files["per_user.csv"] = pd.concat(per_user, ignore_index=True).to_csv(index=False)
    for name, text in files.items():
        handle, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out / name)


def table(results: dict[str, Any], metric: str = "ndcg@10") -> pd.DataFrame:
    """One row per (ratio, model, encoder, cell): mean and interval of ``metric`` over the first seed (NaN: cannot serve)."""
    records = []
    for row in results["rows"]:
        m = row["metrics"].get(metric, {})
        records.append({"ratio": row["ratio"], "seed": row["seed"], "model": row["model"],
                        "encoder": row["encoder"] or "", "cell": row["cell"], "served": row["served"],
                        "mean": m.get("mean", np.nan), "low": m.get("low", np.nan), "high": m.get("high", np.nan)})
    frame = pd.DataFrame(records)
    return frame[frame["seed"] == frame["seed"].min()].drop(columns="seed").reset_index(drop=True)


def format_table(results: dict[str, Any], metric: str = "ndcg@10") -> str:
    """Per ratio: models (by encoder) down, cells of the 2x2 across, ``mean [95% CI]`` or ``cannot serve``."""
    frame = table(results, metric)
    lines = [f"{results['name']}  ({metric} on test users, {results['wall_seconds']:.0f} s)"]
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
    for t in results.get("tuning", []):
        lines.append(f"\ntuned encoder (seed {t['seed']}, ratio {t['ratio']}): {t['train_seconds']:.0f} s fine-tuning on "
                     f"{t['users']} users, {t['encode_seconds']:.0f} s encoding{' (cached)' if t['from_cache'] else ''}")
    return "\n".join(lines)


__all__ = ["DEFAULTS", "format_table", "resolve", "run", "size", "table"]
