"""The cross-domain comparison of chapter 04: every transfer model, at every cold ratio and seed, scored on the same cold users."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.data import cold_start_split, load
from cdtl.data.crossdomain import CrossDomainData, encode_split
from cdtl.data.sampling import sample_users
from cdtl.evaluate import evaluate_ranking, evaluate_ratings, group_items, popularity_scores, rating_report, report
from cdtl.experiment import RANKING, ConfigError, json_default, merge_config, versions
from cdtl.models.batches import bpr_batches, group_by_user, rating_batches, softmax_batches
from cdtl.models.mf import MF
from cdtl.models.transfer import CMF, EMCDR, PTUPCDR, LMBridge, MeanUser, PTUPCDRText, domain_batches, user_batches
from cdtl.models.transfer.base import TargetScorer
from cdtl.train import TrainConfig, fit, set_seed

# name -> what it is, in the order the chapter builds them up
MODELS = {
    "popularity": "target-domain popularity (ranking only)",
    "target_mf": "target-domain MF, a cold user placed at the mean warm user",
    "emcdr_linear": "EMCDR, linear mapping of MF user factors",
    "emcdr_mlp": "EMCDR, MLP mapping of MF user factors",
    "ptupcdr": "PTUPCDR, a personal bridge from the source history",
    "cmf": "collective MF, user factors shared by both domains",
    "lm_bridge": "language-model bridge: text items, users from source history",
    "ptupcdr_lm": "PTUPCDR + LM bridge (ID + text)",
}
TASKS = ("ranking", "rating")  # ranking: BPR-trained models, Recall/NDCG; rating: MSE-trained models, MAE/RMSE
RATING_METRICS = ("mae", "rmse")

_MF = {"dim": 64, "lr": 0.005, "epochs": 20, "batch_size": 4096, "reg": 0.0, "weight_decay": 0.0, "n_negatives": 1}
# ranking_loss: how a bridge trained for ranking learns, "bpr" (pairs) or "softmax" (one class among all items)
_BRIDGE = {"lr": 0.001, "epochs": 30, "patience": 3, "batch_size": 1024, "hidden": 128, "weight_decay": 0.0,
           "ranking_loss": "bpr"}
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
    "mapping": {**_BRIDGE, "lr": 0.005, "epochs": 100, "patience": 5, "batch_size": 256},  # EMCDR
    # bridges trained for ranking use the full softmax (better than BPR on validation users, chapter 04)
    "ptupcdr": {**_BRIDGE, "lr": 0.003, "rating_lr": 0.001, "patience": 5,
                "ranking_loss": "softmax", "max_history": 50},
    "cmf": {**_MF, "alpha": 0.5, "patience": 3, "rating_lr": 0.002, "rating_reg": 0.05},  # reg as in MF
    "lm": {**_BRIDGE, "lr": 0.003, "rating_lr": 0.001, "patience": 5, "ranking_loss": "softmax",
           "model": None, "max_length": 64, "encode_batch_size": 64,  # the language model and its text length
           "adaptor": "linear", "dim": 64, "hidden": 256, "dropout": 0.1, "item_bias": True, "whiten": False,
           "source_task": False, "source_weight": 1.0},  # source_task: also learn from every user's source history
    "evaluate": {"metrics": ["recall@10", "ndcg@10"], "bootstrap": 1000, "batch_size": 2048, "per_user": True},
}


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice before any data is loaded."""
    cfg = merge_config(DEFAULTS, config, "")
    unknown = [m for m in cfg["models"] if m not in MODELS]
    if unknown or not cfg["models"]:
        raise ConfigError(f"unknown models {unknown or '(none given)'}; valid choices: {', '.join(MODELS)}")
    bad_tasks = [t for t in cfg["tasks"] if t not in TASKS]
    if bad_tasks or not cfg["tasks"]:
        raise ConfigError(f"unknown tasks {bad_tasks or '(none given)'}; valid choices: {', '.join(TASKS)}")
    for metric in cfg["evaluate"]["metrics"]:
        if not RANKING.match(metric):
            raise ConfigError(f"evaluate.metrics lists ranking metrics (recall@K, ndcg@K, ...), got {metric!r}; "
                              "rating errors (mae, rmse) come with tasks: [rating]")
    for ratio in cfg["protocol"]["cold_ratios"]:
        if not (isinstance(ratio, (int, float)) and 0 < ratio < 1):
            raise ConfigError(f"protocol.cold_ratios must lie strictly between 0 and 1, got {ratio!r}")
    if not cfg["seeds"]:
        raise ConfigError("seeds is empty: give at least one seed, e.g. [0]")
    for section in ("mapping", "ptupcdr", "lm"):
        if cfg[section]["ranking_loss"] not in ("bpr", "softmax"):
            raise ConfigError(f"{section}.ranking_loss must be 'bpr' or 'softmax', got {cfg[section]['ranking_loss']!r}")
    return cfg


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """``config`` sized for a profile: its seeds, cold ratios, epoch cap, bootstrap and text length."""
    config = copy.deepcopy(config)
    cfg = resolve(config)
    config["seeds"] = list(profile.seeds)
    config.setdefault("protocol", {})["cold_ratios"] = list(profile.cold_ratios)
    for section in ("mapping", "ptupcdr", "cmf", "lm"):
        config.setdefault(section, {})["epochs"] = min(int(cfg[section]["epochs"]), profile.epochs)
    for task in TASKS:
        config.setdefault("mf", {}).setdefault(task, {})["epochs"] = min(int(cfg["mf"][task]["epochs"]), profile.epochs)
    config["lm"]["max_length"] = profile.max_text_length
    config["lm"]["encode_batch_size"] = profile.encode_batch_size
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap
    if cfg["dataset"]["name"].startswith("amazon"):  # the Amazon pair is sampled for quick profiles
        config.setdefault("dataset", {})["sample_users"] = profile.amazon_users or None
    return config


# --------------------------------------------------------------------------- training pieces


def _train_config(section: dict[str, Any], seed: int, monitor: str | None, mode: str) -> TrainConfig:
    return TrainConfig(epochs=int(section["epochs"]), optimizer="adam", lr=float(section["lr"]),
                       weight_decay=float(section.get("weight_decay", 0.0)), monitor=monitor, mode=mode,
                       patience=int(section.get("patience", 5)), seed=seed)


def _target_batches(frame: pd.DataFrame, n_items: int, task: str, batch_size: int, n_negatives: int = 1,
                    n_users: int | None = None, loss: str = "bpr") -> Callable:
    u, i = frame["u"].to_numpy(), frame["i"].to_numpy()
    if task == "rating":
        return rating_batches(u, i, frame["rating"].to_numpy(np.float32), batch_size)
    if loss == "softmax":
        return softmax_batches(u, i, n_items, batch_size)
    from cdtl.data.ids import interaction_matrix

    csr = interaction_matrix(u, i, int(n_users if n_users is not None else u.max() + 1), n_items)
    return bpr_batches(u, i, n_items, batch_size, csr, n_negatives=n_negatives)


def train_mf(frame: pd.DataFrame, n_users: int, n_items: int, task: str, section: dict[str, Any], seed: int,
             rating_scale: tuple[float, float] | None) -> MF:
    """One domain's MF (BPR for ranking, squared error for rating), a fixed number of epochs."""
    set_seed(seed)
    loss = "bpr" if task == "ranking" else "mse"
    model = MF(n_users, n_items, int(section["dim"]), loss=loss, reg=float(section["reg"]),
               global_mean=float(frame["rating"].mean()) if loss == "mse" else 0.0, rating_scale=rating_scale)
    batches = _target_batches(frame, n_items, task, int(section["batch_size"]), int(section["n_negatives"]), n_users)
    fit(model, batches, _train_config(section, seed, None, "max"))
    return model.cpu()


class Scorer:
    """A trained model seen by the protocol: ranks target items and predicts ratings, with the declared fallback.

    A user with no source history cannot be bridged: they get ``fallback`` (popularity for
    ranking, the mean-user target MF for ratings), and are counted, never dropped.
    """

    def __init__(self, model: Any, has_source: np.ndarray, fallback: Any = None) -> None:
        self.model, self.fallback = model, fallback
        self.has_source = torch.as_tensor(has_source)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        scores = self.model.score_all(users).float().cpu()
        if self.fallback is None:
            return scores
        lacking = ~self.has_source[users]
        if lacking.any():
            scores[lacking] = self.fallback.score_all(users[lacking]).float().cpu()
        return scores

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        pred = self.model.predict(users, items).float().cpu()
        if self.fallback is None:
            return pred
        lacking = ~self.has_source[users]
        if lacking.any():
            pred[lacking] = self.fallback.predict(users[lacking], items[lacking]).float().cpu()
        return pred


class Popularity:
    """Every user gets the target items ranked by training interactions."""

    def __init__(self, counts: torch.Tensor) -> None:
        self.counts = counts

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.counts.expand(len(users), -1)


def _ks(cfg: dict[str, Any]) -> list[int]:
    return sorted({int(RANKING.match(m).group(2)) for m in cfg["evaluate"]["metrics"]})


def evaluate_users(scorer: Any, cd: CrossDomainData, which: str, task: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Per-user metrics of the ``which`` ("val" or "test") cold users: full ranking of the target catalogue, or rating errors."""
    frame = cd.held_out(which)
    if task == "ranking":
        users, relevant = group_items(frame["u"].to_numpy(), frame["i"].to_numpy())
        per_user = evaluate_ranking(scorer.score_all, users, relevant, None, _ks(cfg), cfg["evaluate"]["batch_size"])
        return {"users": users, **{m: per_user[m] for m in cfg["evaluate"]["metrics"]}}
    result = evaluate_ratings(scorer.predict, frame["u"].to_numpy(), frame["i"].to_numpy(), frame["rating"].to_numpy())
    return {"users": result["per_user"]["users"], "result": result}


def _validator(cd: CrossDomainData, task: str, cfg: dict[str, Any], wrap: Callable[[Any], Any]) -> Callable:
    """validate(model) for early stopping: the validation cold users' NDCG (ranking) or RMSE (rating)."""
    monitor = _monitor(cfg, task)

    def validate(model: Any) -> dict[str, float]:
        out = evaluate_users(wrap(model), cd, "val", task, cfg)
        if task == "ranking":
            return {monitor: float(np.mean(out[monitor]))}
        return {"rmse": float(out["result"]["rmse"])}

    return validate


def _monitor(cfg: dict[str, Any], task: str) -> str:
    if task == "rating":
        return "rmse"
    metrics = cfg["evaluate"]["metrics"]
    return next((m for m in metrics if m.startswith("ndcg@")), metrics[0])


class Workbench:
    """Trains the models of one (split, task, seed): per-domain MFs once, then any model by name (``build``)."""

    def __init__(self, cd: CrossDomainData, task: str, cfg: dict[str, Any], seed: int, source_mf: MF | None,
                 text: torch.Tensor | None) -> None:
        self.cd, self.task, self.cfg, self.seed = cd, task, cfg, seed
        self.scale = _rating_scale(cd) if task == "rating" else None
        self.has_source = cd.has_source()
        self.source_mf = source_mf
        self.text = text
        self._target_mf: MF | None = None
        self._user_text: torch.Tensor | None = None
        self.pop = popularity_scores(cd.target_train["i"].to_numpy(), cd.n_target_items)
        bridged = cd.target_train["u"].isin(np.flatnonzero(self.has_source))
        self.bridge_train = cd.target_train[bridged]  # warm users' target interactions: what bridges learn from

    @property
    def target_mf(self) -> MF:
        if self._target_mf is None:
            section = self.cfg["mf"][self.task]
            self._target_mf = train_mf(self.cd.target_train, self.cd.n_users, self.cd.n_target_items, self.task,
                                       section, self.seed, self.scale)
        return self._target_mf

    def fallback(self) -> Any:
        return Popularity(self.pop) if self.task == "ranking" else MeanUser(self.target_mf, self.cd.warm,
                                                                          rating_scale=self.scale)

    def wrap(self, model: Any) -> Scorer:
        return Scorer(model, self.has_source, self.fallback())

    def fit_bridge(self, model: TargetScorer, section: dict[str, Any], batches: Callable | None = None) -> TargetScorer:
        """Train a bridge on warm users' target data (or ``batches``), early-stopped on the validation cold users."""
        set_seed(self.seed)
        if batches is None:  # whole users per batch: each user's bridge is computed once per batch
            batches = group_by_user(_target_batches(self.bridge_train, self.cd.n_target_items, self.task,
                                                    int(section["batch_size"]), n_users=self.cd.n_users,
                                                    loss=self.loss(section)))
        mode = "min" if self.task == "rating" else "max"
        if self.task == "rating" and "rating_lr" in section:
            section = {**section, "lr": section["rating_lr"]}
        fallback = self.fallback()
        wrap = lambda m: Scorer(m, self.has_source, fallback)  # noqa: E731
        fit(model, batches, _train_config(section, self.seed, _monitor(self.cfg, self.task), mode),
            _validator(self.cd, self.task, self.cfg, wrap))
        return model.cpu()

    def loss(self, section: dict[str, Any]) -> str:
        """The training loss of a bridge: squared error for ratings, the section's ranking_loss for ranking."""
        return "mse" if self.task == "rating" else section["ranking_loss"]

    def user_text(self) -> torch.Tensor:
        """(n_users, D): each user's mean source-item text vector (zero without source history)."""
        from cdtl.encoders.users import mean_pool

        if self._user_text is not None:
            return self._user_text
        items, mask = self.cd.source_histories(None)
        src_text = self.text[torch.as_tensor(self.cd.item_rows(self.cd.split.source))]
        lists = [row[m].numpy() for row, m in zip(items, mask)]
        self._user_text = mean_pool(src_text, lists, empty="zeros")
        return self._user_text

    def lm_bridge(self, loss: str | None = None) -> LMBridge:
        lm = self.cfg["lm"]
        item_text = self.text[torch.as_tensor(self.cd.item_rows(self.cd.split.target))]
        mean = float(self.cd.target_train["rating"].mean()) if self.task == "rating" else 0.0
        source = {}
        if lm["source_task"]:
            source = {"source_text": self.text[torch.as_tensor(self.cd.item_rows(self.cd.split.source))],
                      "source_counts": torch.as_tensor(np.bincount(self.cd.source_train["u"], minlength=self.cd.n_users),
                                                       dtype=torch.float32),
                      "source_weight": float(lm["source_weight"])}
        return LMBridge(item_text, self.user_text(), **source, dim=int(lm["dim"]), hidden=int(lm["hidden"]),
                        adaptor=lm["adaptor"], dropout=float(lm["dropout"]), item_bias=bool(lm["item_bias"]),
                        whiten=bool(lm["whiten"]),
                        loss=loss or self.loss(lm), global_mean=mean, rating_scale=self.scale)

    def ptupcdr(self) -> PTUPCDR:
        items, mask = self.cd.source_histories(int(self.cfg["ptupcdr"]["max_history"]))
        return PTUPCDR(self.source_mf, self.target_mf, items, mask, hidden=int(self.cfg["ptupcdr"]["hidden"]),
                       loss=self.loss(self.cfg["ptupcdr"]), rating_scale=self.scale)

    def build(self, name: str) -> Any:
        """Train model ``name`` and return it wrapped as a ``Scorer``."""
        cfg = self.cfg
        if name == "popularity":
            return Scorer(Popularity(self.pop), self.has_source)
        if name == "target_mf":
            return Scorer(MeanUser(self.target_mf, self.cd.warm, rating_scale=self.scale), self.has_source)
        if name in ("emcdr_linear", "emcdr_mlp"):
            model = EMCDR(self.source_mf, self.target_mf, mapping=name.split("_")[1],
                          hidden=int(cfg["mapping"]["hidden"]), rating_scale=self.scale)
            warm = self.cd.warm[self.has_source[self.cd.warm]]
            return self.wrap(self.fit_bridge(model, cfg["mapping"], user_batches(warm, int(cfg["mapping"]["batch_size"]))))
        if name == "ptupcdr":
            return self.wrap(self.fit_bridge(self.ptupcdr(), cfg["ptupcdr"]))
        if name == "lm_bridge":
            batches = None
            if cfg["lm"]["source_task"]:  # the source task's batches interleaved with the target's
                src, size = self.cd.source_train, int(cfg["lm"]["batch_size"])
                batches = domain_batches(
                    softmax_batches(src["u"].to_numpy(), src["i"].to_numpy(), self.cd.n_source_items, size),
                    group_by_user(_target_batches(self.bridge_train, self.cd.n_target_items, self.task, size,
                                                  n_users=self.cd.n_users, loss=self.loss(cfg["lm"]))))
            return self.wrap(self.fit_bridge(self.lm_bridge(), cfg["lm"], batches))
        if name == "ptupcdr_lm":
            both = PTUPCDRText(self.ptupcdr(), self.lm_bridge(self.loss(cfg["ptupcdr"])))
            return self.wrap(self.fit_bridge(both, cfg["ptupcdr"]))
        if name == "cmf":
            return self.wrap(self.cmf())
        raise ConfigError(f"unknown model {name!r}; valid choices: {', '.join(MODELS)}")

    def cmf(self) -> CMF:
        c, cd, task = self.cfg["cmf"], self.cd, self.task
        rating = task == "rating"
        model = CMF(cd.n_users, cd.n_source_items, cd.n_target_items, int(c["dim"]), loss="mse" if rating else "bpr",
                    alpha=float(c["alpha"]), reg=float(c["rating_reg"] if rating else c["reg"]),
                    source_mean=float(cd.source_train["rating"].mean()) if rating else 0.0,
                    target_mean=float(cd.target_train["rating"].mean()) if rating else 0.0, rating_scale=self.scale)
        size = int(c["batch_size"])
        batches = domain_batches(
            _target_batches(cd.source_train, cd.n_source_items, task, size, int(c["n_negatives"]), cd.n_users),
            _target_batches(cd.target_train, cd.n_target_items, task, size, int(c["n_negatives"]), cd.n_users))
        return self.fit_bridge(model, c, batches)


def _rating_scale(cd: CrossDomainData) -> tuple[float, float] | None:
    ratings = cd.split.data.interactions["rating"] if cd.has_ratings else None
    return None if ratings is None else (float(ratings.min()), float(ratings.max()))


def item_text_vectors(cfg: dict[str, Any], items: pd.DataFrame) -> torch.Tensor:
    """The language-model vector of every item (cached on disk), row r for ``items`` row r."""
    from cdtl.encoders.catalogue import encode_items

    lm = cfg["lm"]
    return encode_items(items, model=lm["model"], max_length=int(lm["max_length"]), batch_size=int(lm["encode_batch_size"]))


# --------------------------------------------------------------------------- the comparison


def run(config: dict[str, Any], out_dir: str | Path | None = None, *, data: Any = None,
        keep_models: bool = False) -> dict[str, Any]:
    """Run every model at every cold ratio and seed; return the results (and write metrics.json, per_user.csv).

    ``data`` (a two-domain ``RecData``, e.g. from ``cdtl.data.load_tables``) replaces the
    config's dataset: your own data through the same protocol and models. With
    ``keep_models`` the results also hold, for the first seed and cold ratio, the encoded
    split (``"data"``) and every trained model (``"models"``: ``{(task, name): Scorer}``),
    to look inside them.
    """
    started = time.perf_counter()
    cfg = resolve(config)
    ds, proto = cfg["dataset"], cfg["protocol"]
    data = load(ds["name"], ds["domains"]) if data is None else data
    if ds["sample_users"]:
        data = sample_users(data, int(ds["sample_users"]), seed=cfg["seeds"][0], bridge_only=True)
    for domain in (proto["source"], proto["target"]):
        if domain not in data.domains:
            raise ConfigError(f"protocol names domain {domain!r}, but {data.name} has domains {data.domains}")
    if "rating" in cfg["tasks"] and not data.has_ratings:
        raise ConfigError(f"{data.name} has no ratings (implicit feedback): rating metrics (mae, rmse) cannot be "
                          "computed; use tasks: [ranking]")
    needs_text = any(m in cfg["models"] for m in ("lm_bridge", "ptupcdr_lm"))
    text = item_text_vectors(cfg, data.items) if needs_text else None
    needs_source = any(m in cfg["models"] for m in ("emcdr_linear", "emcdr_mlp", "ptupcdr", "ptupcdr_lm"))

    rows: list[dict[str, Any]] = []
    per_user: list[pd.DataFrame] = []
    kept: dict[Any, Any] = {}
    splits: list[dict[str, Any]] = []
    for seed in cfg["seeds"]:
        source_mfs: dict[str, MF] = {}  # the source MF does not depend on the cold ratio: train it once per seed
        for ratio in proto["cold_ratios"]:
            split = cold_start_split(data, proto["source"], proto["target"], ratio, seed=seed,
                                     val_fraction=proto["val_fraction"])
            cd = encode_split(split)
            cold = np.concatenate([cd.val_users, cd.test_users])
            splits.append({"seed": seed, **split.summary(), "encoded": cd.summary(),
                           "cold_users_without_source_history": int((~cd.has_source()[cold]).sum())})
            for task in cfg["tasks"]:
                if needs_source and task not in source_mfs:
                    source_mfs[task] = train_mf(cd.source_train, cd.n_users, cd.n_source_items, task,
                                                cfg["mf"][task], seed, _rating_scale(cd) if task == "rating" else None)
                ctx = Workbench(cd, task, cfg, seed, source_mfs.get(task), text)
                for name in cfg["models"]:
                    if task == "rating" and name == "popularity":
                        continue  # popularity ranks, it does not predict ratings
                    tick = time.perf_counter()
                    scorer = ctx.build(name)
                    if keep_models and seed == cfg["seeds"][0] and ratio == proto["cold_ratios"][0]:
                        kept["data"], kept.setdefault("models", {})[(task, name)] = cd, scorer
                    out = evaluate_users(scorer, cd, "test", task, cfg)
                    seconds = time.perf_counter() - tick
                    if task == "ranking":
                        metrics = report({m: out[m] for m in cfg["evaluate"]["metrics"]},
                                         cfg["evaluate"]["bootstrap"], seed)
                        values = {m: out[m] for m in cfg["evaluate"]["metrics"]}
                    else:
                        metrics = rating_report(out["result"], RATING_METRICS, cfg["evaluate"]["bootstrap"], seed)
                        values = {m: out["result"]["per_user"][k] for m, k in (("mae", "abs_error"), ("rmse", "sq_error"))}
                        values["rmse"] = np.sqrt(values["rmse"])
                    rows.append({"seed": seed, "cold_ratio": ratio, "task": task, "model": name,
                                 "seconds": seconds, "metrics": metrics})
                    if cfg["evaluate"]["per_user"]:
                        frame = pd.DataFrame({"seed": seed, "cold_ratio": ratio, "task": task, "model": name,
                                              "user": cd.users.decode(out["users"]), **values})
                        per_user.append(frame)
    results = {
        "name": cfg["name"],
        "kind": "transfer",
        "config": cfg,
        "rows": rows,
        "splits": splits,
        "versions": versions(),
        "wall_seconds": time.perf_counter() - started,
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(results, indent=2, default=json_default))
        if per_user:
            pd.concat(per_user, ignore_index=True).to_csv(out / "per_user.csv", index=False)
    results["per_user"] = pd.concat(per_user, ignore_index=True) if per_user else None
    results.update(kept)
    return results


def table(results: dict[str, Any]) -> pd.DataFrame:
    """One row per (task, metric, model), one column per cold ratio: mean over seeds, and the first seed's interval."""
    records = []
    for row in results["rows"]:
        for metric, m in row["metrics"].items():
            records.append({"task": row["task"], "metric": metric, "model": row["model"], "cold_ratio": row["cold_ratio"],
                            "seed": row["seed"], "mean": m["mean"], "low": m.get("low"), "high": m.get("high")})
    frame = pd.DataFrame(records)
    order = {name: k for k, name in enumerate(MODELS)}
    frame["order"] = frame["model"].map(order)
    return frame.sort_values(["task", "metric", "order", "cold_ratio", "seed"]).drop(columns="order").reset_index(drop=True)


def format_table(results: dict[str, Any]) -> str:
    """All models by cold ratio, per metric: ``mean [95% CI]`` (the mean over seeds when there are several)."""
    frame = table(results)
    seeds = sorted(frame["seed"].unique())
    lines = [f"{results['name']}  ({len(seeds)} seed(s) {seeds}, {results['wall_seconds']:.0f} s)"]
    for (task, metric), part in frame.groupby(["task", "metric"], sort=False):
        ratios = sorted(part["cold_ratio"].unique())
        lines.append("")
        lines.append(f"{metric} ({task}, cold test users)".ljust(26) + "".join(f"{'cold ' + format(r, '.0%'):>26}" for r in ratios))
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
              seed: int = 0, text: torch.Tensor | None = None) -> Scorer:
    """Train one model of this comparison on an encoded split (for other chapters, e.g. fusion).

    ``config`` is a transfer config (defaults filled in); ``text`` the item text vectors
    aligned with ``cd.split.data.items`` (computed when a text model needs them and it is None).
    Returns a ``Scorer`` with ``score_all(users)`` over the target catalogue.
    """
    cfg = resolve(config or {})
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid choices: {', '.join(MODELS)}")
    if text is None and name in ("lm_bridge", "ptupcdr_lm"):
        text = item_text_vectors(cfg, cd.split.data.items)
    source_mf = None
    if name in ("emcdr_linear", "emcdr_mlp", "ptupcdr", "ptupcdr_lm"):
        source_mf = train_mf(cd.source_train, cd.n_users, cd.n_source_items, task, cfg["mf"][task], seed,
                             _rating_scale(cd) if task == "rating" else None)
    return Workbench(cd, task, cfg, seed, source_mf, text).build(name)


__all__ = ["DEFAULTS", "MODELS", "TASKS", "Scorer", "Workbench", "evaluate_users", "fit_model", "format_table", "resolve", "run",
           "size", "table", "train_mf"]
