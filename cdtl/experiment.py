"""Run one experiment described in YAML (dataset, protocol, model, training, evaluation) and save metrics.json."""

from __future__ import annotations

import copy
import json
import platform
import re
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from cdtl.data import cold_start_split, load
from cdtl.data.ids import IdMap, interaction_matrix
from cdtl.data.protocols import per_user_split, random_split
from cdtl.evaluate import evaluate_ranking, evaluate_ratings, group_items, popularity_scores, rating_report, report
from cdtl.models.batches import bpr_batches, rating_batches, softmax_batches
from cdtl.models.mf import LOSSES, MF
from cdtl.train import TrainConfig, choose_device, fit, set_seed

# Every key an experiment may have, with its default. Unknown keys fail before any work.
DEFAULTS: dict[str, Any] = {
    "name": "experiment",
    "seed": 0,
    "dataset": {"name": "movielens-100k", "domains": None, "domain": None},
    "protocol": {"name": "per_user", "fractions": [0.8, 0.1, 0.1], "test": 0.1, "val": 0.1,
                 "source": None, "target": None, "cold_ratio": 0.2},
    "model": {"name": "mf", "loss": "bpr", "dim": 64, "dropout": 0.0, "reg": 0.0, "init_std": 0.01,
              "n_negatives": None, "sampler": "uniform"},
    "batches": {"batch_size": 2048},
    "train": {f.name: f.default for f in fields(TrainConfig)},
    "evaluate": {"metrics": ["recall@10", "ndcg@10"], "bootstrap": 1000, "batch_size": 2048, "threshold": 4.0},
}
PROTOCOLS = ("per_user", "random", "cold_start")
MODELS = ("mf", "popularity")
RANKING = re.compile(r"^(recall|ndcg|hit|mrr|precision)@(\d+)$")
RATING_METRICS = ("mae", "rmse", "like_precision", "like_recall", "like_f1")


class ConfigError(ValueError):
    """An experiment configuration that cannot run; the message lists the valid choices."""


def merge_config(defaults: dict[str, Any], given: dict[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise ConfigError(f"unknown key {where}{key!r}; valid keys: {', '.join(sorted(defaults))}")
        if isinstance(defaults[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key!r} must be a mapping, got {value!r}")
            out[key] = merge_config(defaults[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def set_value(config: dict[str, Any], assignment: str) -> None:
    """Apply one ``--set section.key=value`` (the value parsed as YAML) to a raw config."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    path, raw = assignment.split("=", 1)
    keys = path.strip().split(".")
    node = config
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = yaml.safe_load(raw)


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice, so a bad config fails before any data is loaded.

    A config with a ``kind`` (see ``KINDS``) is resolved by that kind's module.
    """
    module = runner(config)
    if module.__name__ != __name__:
        return module.resolve(config)
    cfg = merge_config(DEFAULTS, {k: v for k, v in config.items() if k != "kind"}, "")
    if cfg["protocol"]["name"] not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {cfg['protocol']['name']!r}; valid choices: {', '.join(PROTOCOLS)}")
    model = cfg["model"]
    if model["name"] not in MODELS:
        raise ConfigError(f"unknown model {model['name']!r}; valid choices: {', '.join(MODELS)}")
    if model["name"] == "mf" and model["loss"] not in LOSSES:
        raise ConfigError(f"unknown model.loss {model['loss']!r}; valid choices: {', '.join(LOSSES)}")
    for metric in cfg["evaluate"]["metrics"]:
        if not (RANKING.match(metric) or metric in RATING_METRICS):
            raise ConfigError(
                f"unknown metric {metric!r}; valid choices: recall@K, ndcg@K, hit@K, mrr@K, precision@K, "
                + ", ".join(RATING_METRICS)
            )
    rating = [m for m in cfg["evaluate"]["metrics"] if m in RATING_METRICS]
    if rating and not (model["name"] == "mf" and model["loss"] == "mse"):
        raise ConfigError(f"rating metrics {rating} need a model trained on ratings (model.loss: mse)")
    if model["name"] == "mf" and model["loss"] == "mse" and cfg["protocol"]["name"] != "random":
        raise ConfigError("model.loss: mse is evaluated on held-out ratings: use protocol.name: random")
    try:
        TrainConfig.from_dict(cfg["train"])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"train: {err}") from err
    return cfg


@dataclass
class Prepared:
    """Interactions encoded to contiguous indices, split by the protocol."""

    users: IdMap
    items: IdMap
    parts: dict[str, pd.DataFrame]  # train / val / test with integer columns u, i
    has_ratings: bool


def prepare(cfg: dict[str, Any]) -> Prepared:
    """Load the dataset, pick a domain if asked, split by the protocol and encode ids."""
    ds = cfg["dataset"]
    data = load(ds["name"], ds["domains"])
    inter = data.interactions
    if ds["domain"] is not None:
        if ds["domain"] not in data.domains:
            raise ConfigError(f"dataset.domain {ds['domain']!r} is not one of {data.domains}")
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
    return Prepared(users, items, parts, data.has_ratings)


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


def _ranking(cfg, scorer, part: pd.DataFrame, exclude_csr) -> dict[str, np.ndarray]:
    users, relevant = group_items(part["u"].to_numpy(), part["i"].to_numpy())
    ks = sorted({int(RANKING.match(m).group(2)) for m in cfg["evaluate"]["metrics"] if RANKING.match(m)})
    per_user = evaluate_ranking(scorer, users, relevant, exclude_csr, ks, cfg["evaluate"]["batch_size"])
    return {m: per_user[m] for m in cfg["evaluate"]["metrics"] if m in per_user}


def _rating(cfg, model: MF, part: pd.DataFrame) -> dict[str, Any]:
    out = evaluate_ratings(model.predict, part["u"].to_numpy(), part["i"].to_numpy(), part["rating"].to_numpy(),
                           threshold=cfg["evaluate"]["threshold"])
    return out


# Experiments that compare several models have their own schema and runner, named by the
# config's top-level ``kind``; without ``kind`` a config is one model on one protocol (below).
KINDS = {
    "single": "cdtl.experiment",
    "transfer": "cdtl.comparisons.transfer",
    "fusion": "cdtl.comparisons.fusion",
    "multitask": "cdtl.comparisons.multitask",
}


def runner(config: dict[str, Any]) -> Any:
    """The module that runs ``config``: it has ``resolve``, ``run``, ``format_table`` and ``size``."""
    import importlib

    kind = config.get("kind", "single") if isinstance(config, dict) else "single"
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; valid choices: {', '.join(KINDS)}")
    return importlib.import_module(KINDS[kind])


def run(config: dict[str, Any], out_dir: str | Path | None = None) -> dict[str, Any]:
    """Run an experiment end to end; return (and write to ``out_dir/metrics.json``) its results."""
    module = runner(config)
    if module.__name__ != __name__:
        return module.run(config, out_dir)
    config = {k: v for k, v in config.items() if k != "kind"}
    started = time.perf_counter()
    cfg = resolve(config)
    set_seed(cfg["seed"])
    prep = prepare(cfg)
    n_users, n_items = len(prep.users), len(prep.items)
    train, val, test = prep.parts["train"], prep.parts["val"], prep.parts["test"]
    train_csr = interaction_matrix(train["u"].to_numpy(), train["i"].to_numpy(), n_users, n_items)
    seen_csr = interaction_matrix(np.concatenate([train["u"], val["u"]]), np.concatenate([train["i"], val["i"]]),
                                  n_users, n_items)
    ranking = [m for m in cfg["evaluate"]["metrics"] if RANKING.match(m)]
    rating = [m for m in cfg["evaluate"]["metrics"] if m in RATING_METRICS]
    train_cfg = TrainConfig.from_dict({**cfg["train"], "seed": cfg["seed"]})
    history: list[dict[str, Any]] = []
    best_epoch = None

    if cfg["model"]["name"] == "popularity":
        pop = popularity_scores(train["i"].to_numpy(), n_items)
        scorer = lambda u: pop.expand(len(u), -1)  # noqa: E731
        model = None
    else:
        m = cfg["model"]
        global_mean = float(train["rating"].mean()) if m["loss"] == "mse" else 0.0
        model = MF(n_users, n_items, m["dim"], loss=m["loss"], dropout=m["dropout"], reg=m["reg"],
                   init_std=m["init_std"], global_mean=global_mean,
                   rating_scale=load_scale(cfg) if m["loss"] == "mse" else None)
        device = choose_device(train_cfg.device)

        pop = popularity_scores(train["i"].to_numpy(), n_items)
        unseen = torch.from_numpy(np.diff(train_csr.indptr) == 0)  # users with no training interaction

        def scorer(u: torch.Tensor) -> torch.Tensor:
            """MF scores; a user MF never saw in training falls back to popularity (the declared fallback)."""
            scores = model.score_all(u.to(device)).float().cpu()
            return torch.where(unseen[u].unsqueeze(1), pop.expand_as(scores), scores)

        def validate(_: torch.nn.Module) -> dict[str, float]:
            if len(val) == 0:
                return {}
            if rating:
                res = _rating(cfg, model, val)
                return {"rmse": res["rmse"], "mae": res["mae"]}
            return {k: float(v.mean()) for k, v in _ranking(cfg, scorer, val, train_csr).items()}

        result = fit(model, _batches(cfg, prep, train_csr), train_cfg, validate if len(val) else None)
        history, best_epoch = result.history, result.best_epoch

    metrics: dict[str, Any] = {}
    if ranking:
        metrics.update(report(_ranking(cfg, scorer, test, seen_csr), cfg["evaluate"]["bootstrap"], cfg["seed"]))
    if rating:
        res = _rating(cfg, model, test)
        metrics.update(rating_report(res, rating, cfg["evaluate"]["bootstrap"], cfg["seed"]))

    epoch_seconds = [h["seconds"] for h in history]
    results = {
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
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(results, indent=2, default=json_default))
    return results


def load_scale(cfg: dict[str, Any]) -> tuple[float, float] | None:
    """The rating scale of the experiment's dataset (MovieLens: 1 to 5)."""
    return (1.0, 5.0) if cfg["dataset"]["name"].startswith("movielens") else None


def json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def versions() -> dict[str, str]:
    """Versions of what produced a result, for metrics.json."""
    import cdtl

    return {"cdtl": cdtl.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "platform": platform.platform()}


CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # the course's experiments (``configs/`` in the repo)
DATASET_TAGS = {"movielens-100k": "ml100k", "movielens-1m": "ml1m"}


def config_names() -> list[str]:
    """Names of the experiments shipped with the package (``cdtl/configs/*.yaml``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a YAML experiment (a path, or the name of a shipped config) and apply ``--set`` overrides."""
    path = Path(path)
    if not path.exists() and (CONFIG_DIR / f"{path.name}.yaml").exists():
        path = CONFIG_DIR / f"{path.name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such experiment config; shipped configs: {', '.join(config_names())}")
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: an experiment config must be a mapping of sections, got {type(config).__name__}")
    for assignment in overrides or []:
        set_value(config, assignment)
    return config


def for_profile(stem: str, profile: Any, overrides: list[str] | None = None) -> dict[str, Any]:
    """The shipped config ``{stem}_{dataset}`` for a profile's MovieLens, sized by the profile.

    ``for_profile("mf_bpr", cdtl.profile("smoke"))`` is ``mf_bpr_ml100k`` with at most
    ``profile.epochs`` epochs and ``profile.bootstrap`` resamples: the chapters and
    ``cdtl run`` share one set of hyper-parameters.
    """
    config = load_config(f"{stem}_{DATASET_TAGS[profile.movielens]}")
    module = runner(config)
    if module.__name__ != __name__:
        config = module.size(config, profile)
        for assignment in overrides or []:
            set_value(config, assignment)
        return config
    config.setdefault("train", {})
    config["train"]["epochs"] = min(int(config["train"].get("epochs", profile.epochs)), profile.epochs)
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap
    for assignment in overrides or []:
        set_value(config, assignment)
    return config


def format_table(results: dict[str, Any]) -> str:
    """A plain-text table of the test metrics with their 95 % intervals."""
    module = runner(results.get("config", {}))
    if module.__name__ != __name__:
        return module.format_table(results)
    lines = [f"{results['name']}  (seed {results['seed']}, {results['epochs_run']} epochs, best epoch "
             f"{results['best_epoch']}, {results['wall_seconds']:.1f} s on {results['device']})",
             f"{'metric':<16}{'test':>10}{'95% CI':>22}{'n':>8}"]
    for name, m in results["metrics"].items():
        ci = f"[{m['low']:.4f}, {m['high']:.4f}]" if "low" in m else "-"
        lines.append(f"{name:<16}{m['mean']:>10.4f}{ci:>22}{m['n']:>8}")
    return "\n".join(lines)
