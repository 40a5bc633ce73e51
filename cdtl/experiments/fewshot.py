"""The new-domain comparison of chapter 05: no user shared in training, test users known by 0, 1, 3 or 5 target interactions."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.comparisons.transfer import Popularity, Scorer, train_mf
from cdtl.data import load
from cdtl.data.fewshot import SHOTS, cross_platform, few_shot_split
from cdtl.data.ids import IdMap, interaction_matrix
from cdtl.data.sampling import sample_users
from cdtl.evaluate import evaluate_ranking, group_items, popularity_scores, report
from cdtl.experiment import RANKING, ConfigError, merge_config, versions
from cdtl.experiments.newitems import _write
from cdtl.experiments.text_common import (ENCODERS, TEXT, TUNING, check_choices, frozen_vectors, mean_text,
                                          tuned_vectors, user_histories)
from cdtl.models.batches import softmax_batches
from cdtl.models.content_knn import ContentKNN
from cdtl.models.dropoutnet import DropoutNet
from cdtl.models.text_only import TextOnly
from cdtl.train import TrainConfig, fit, set_seed

MODELS = {
    "popularity": "target popularity (target-only)",
    "target_knn": "item k-NN over target-domain MF factors of the known items (target-only; popularity at 0 shots)",
    "content_knn": "content k-NN: source history and known target items against each item's text",
    "two_tower": "two-tower: cosine of the mean history vector and the item vector",
    "dropoutnet": "DropoutNet trained on the target's own users; a test user is the mean text of what is known",
}
TEXT_MODELS = ("content_knn", "two_tower", "dropoutnet")
DEFAULTS: dict[str, Any] = {
    "kind": "fewshot",
    "name": "fewshot",
    "seeds": [0],
    # platform: a second dataset whose items are the source domain (e.g. movielens-1m): the two share no user at all
    "dataset": {"name": "amazon-food-kitchen", "domains": None, "sample_users": None, "platform": None},
    "protocol": {"source": "kitchen", "target": "food", "shots": list(SHOTS), "eval_ratio": 0.2, "val_fraction": 0.5,
                 "max_eval_users": None},
    "models": list(MODELS),
    "encoders": list(ENCODERS),
    "text": dict(TEXT),
    "tuning": dict(TUNING),
    "mf": {"dim": 64, "lr": 0.005, "epochs": 20, "batch_size": 4096, "reg": 0.0, "weight_decay": 0.0, "n_negatives": 1},
    "knn": {"k": 10, "max_history": 100},
    "dropoutnet": {"lr": 0.003, "epochs": 30, "patience": 3, "batch_size": 1024, "weight_decay": 0.0, "dim": 64,
                   "hidden": 256, "item_dropout": 0.5, "user_dropout": 0.5, "dropout": 0.1},
    "evaluate": {"metrics": ["recall@10", "ndcg@10"], "monitor": "ndcg@10", "bootstrap": 1000, "batch_size": 2048},
}


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice before any data is loaded."""
    cfg = merge_config(DEFAULTS, config, "")
    check_choices(cfg, {"models": MODELS, "encoders": ENCODERS})
    shots = cfg["protocol"]["shots"]
    if not shots or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in shots):
        raise ConfigError(f"protocol.shots must be non-negative integers, e.g. {list(SHOTS)}, got {shots!r}")
    for metric in cfg["evaluate"]["metrics"]:
        if not RANKING.match(metric):
            raise ConfigError(f"evaluate.metrics lists ranking metrics (recall@K, ndcg@K, ...), got {metric!r}")
    if cfg["evaluate"]["monitor"] not in cfg["evaluate"]["metrics"]:
        raise ConfigError(f"evaluate.monitor must be one of evaluate.metrics, got {cfg['evaluate']['monitor']!r}")
    return cfg


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """``config`` sized for a profile (as the new-item comparison is)."""
    from cdtl.experiments.newitems import size as size_newitems

    config = copy.deepcopy(config)
    cfg = resolve(config)
    sized = size_newitems({"kind": "newitems", "dataset": {"name": cfg["dataset"]["name"], "domains": None}}, profile)
    for section in ("text", "tuning"):
        config.setdefault(section, {}).update(sized[section])
    for section in ("mf", "dropoutnet"):
        config.setdefault(section, {})["epochs"] = min(int(cfg[section]["epochs"]), profile.epochs)
    config["seeds"] = list(profile.seeds[:1])
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap
    config.setdefault("dataset", {})["sample_users"] = profile.amazon_users or None
    return config


def load_pair(cfg: dict[str, Any]) -> Any:
    """The two-domain data of the config: one dataset, or two platforms joined by ``cross_platform``."""
    ds, proto = cfg["dataset"], cfg["protocol"]
    data = load(ds["name"], ds["domains"])
    if ds["sample_users"]:
        data = sample_users(data, int(ds["sample_users"]), seed=cfg["seeds"][0])
    if ds["platform"]:
        data = cross_platform(load(ds["platform"]), data, target_domain=proto["target"],
                              names=(proto["source"], proto["target"]))
    return data


class FewShotBench:
    """The models of one few-shot split: trained once, then asked to score the evaluation users at every k."""

    def __init__(self, split: Any, cfg: dict[str, Any], seed: int, vectors: dict[str, torch.Tensor]) -> None:
        self.split, self.cfg, self.seed, self.vectors = split, cfg, seed, vectors
        items = split.data.items
        self.items = IdMap.fit(items.loc[items["domain"] == split.target, "item"])
        self.rows = pd.Index(items["item"]).get_indexer(self.items.ids)
        self.eval_users = IdMap.fit(np.concatenate([split.val_users, split.test_users]))
        target = split.train[split.train["domain"] == split.target]
        self.train_users = IdMap.fit(target["user"])
        self.u, self.i = self.train_users.encode(target["user"]), self.items.encode(target["item"])
        self.pop = popularity_scores(self.i, len(self.items))
        self._trained: dict[Any, Any] = {}

    def histories(self, shots: int) -> list[np.ndarray]:
        """Each evaluation user's known interactions at ``shots`` (source history + first ``shots`` target items)."""
        return user_histories(self.split.history(self.eval_users.ids, shots), self.split.data.items, self.eval_users)

    def known_target(self, shots: int) -> Any:
        """The (n_eval_users, n_target_items) matrix of the target items known at ``shots``: never recommended."""
        known = self.split.known[self.split.known["position"] < shots]
        return interaction_matrix(self.eval_users.encode(known["user"]), self.items.encode(known["item"]),
                                  len(self.eval_users), len(self.items))

    def trained(self, name: str, encoder: str | None) -> Any:
        """The models that learn from training data (target MF, DropoutNet), trained once per split."""
        key = (name, encoder)
        if key not in self._trained:
            set_seed(self.seed)
            if name == "target_knn":
                self._trained[key] = train_mf(pd.DataFrame({"u": self.u, "i": self.i}), len(self.train_users),
                                              len(self.items), "ranking", self.cfg["mf"], self.seed, None)
            else:
                self._trained[key] = self._dropoutnet(self.vectors[encoder])
        return self._trained[key]

    def _dropoutnet(self, vectors: torch.Tensor) -> DropoutNet:
        d = self.cfg["dropoutnet"]
        known = torch.as_tensor(np.bincount(self.i, minlength=len(self.items)) > 0)
        target = self.split.train[self.split.train["domain"] == self.split.target]
        user_text = mean_text(vectors, user_histories(target, self.split.data.items, self.train_users))
        model = DropoutNet(vectors[self.rows], known, user_text, torch.ones(len(self.train_users), dtype=torch.bool),
                           dim=int(d["dim"]), hidden=int(d["hidden"]), item_dropout=float(d["item_dropout"]),
                           user_dropout=float(d["user_dropout"]), dropout=float(d["dropout"]))
        metric = self.cfg["evaluate"]["monitor"]

        def validate(m: DropoutNet) -> dict[str, float]:
            outs = [self.evaluate(self._text_scorer(m, vectors, k), "val", k, [int(metric.split("@")[1])])
                    for k in self.split.shots]
            return {"val": float(np.mean([np.mean(o[metric]) for o in outs]))}

        config = TrainConfig(epochs=int(d["epochs"]), optimizer="adam", lr=float(d["lr"]), monitor="val", mode="max",
                             patience=int(d["patience"]), seed=self.seed)
        fit(model, softmax_batches(self.u, self.i, len(self.items), int(d["batch_size"])), config, validate)
        return model.cpu()

    def _text_scorer(self, model: DropoutNet, vectors: torch.Tensor, shots: int) -> Scorer:
        histories = self.histories(shots)
        text = mean_text(vectors, histories)
        has = np.array([len(h) > 0 for h in histories])
        return Scorer(_ByText(model, text), has, Popularity(self.pop))

    def scorer(self, name: str, encoder: str | None, shots: int) -> tuple[Any, int]:
        """(scorer over the target catalogue for evaluation-user indices, users on the popularity fallback)."""
        histories = self.histories(shots)
        has = np.array([len(h) > 0 for h in histories])
        fallback = Popularity(self.pop)
        if name == "popularity":
            return fallback, 0
        if name == "target_knn":
            known = self.split.history(self.eval_users.ids, shots)
            known = known[known["domain"] == self.split.target]
            lists = user_histories(known, self.split.data.items.iloc[self.rows].reset_index(drop=True), self.eval_users)
            knn = ContentKNN(self.trained(name, None).item_emb.weight.detach(), lists, k=self.cfg["knn"]["k"])
            return Scorer(knn, knn.has_history, fallback), int((~knn.has_history).sum())
        vectors = self.vectors[encoder]
        if name == "content_knn":
            model = ContentKNN(vectors, histories, candidates=self.rows, k=self.cfg["knn"]["k"],
                               max_history=self.cfg["knn"]["max_history"])
        elif name == "two_tower":
            recent = [h[-int(self.cfg["tuning"]["max_history"]):] for h in histories]
            model = TextOnly(vectors, mean_text(vectors, recent), candidates=self.rows)
        elif name == "dropoutnet":
            return self._text_scorer(self.trained(name, encoder), vectors, shots), int((~has).sum())
        else:
            raise ConfigError(f"unknown model {name!r}; valid choices: {', '.join(MODELS)}")
        return Scorer(model, has, fallback), int((~has).sum())

    def evaluate(self, scorer: Any, which: str, shots: int, ks: list[int]) -> dict[str, np.ndarray]:
        frame = self.split.held_out(which)
        users, relevant = group_items(self.eval_users.encode(frame["user"]), self.items.encode(frame["item"]))
        out = evaluate_ranking(scorer.score_all, users, relevant, self.known_target(shots), ks,
                               int(self.cfg["evaluate"]["batch_size"]))
        return {"users": users, **out}


class _ByText:
    """DropoutNet scoring users known only by the mean text of their history (no id)."""

    def __init__(self, model: DropoutNet, text: torch.Tensor) -> None:
        self.model, self.text = model, text

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.model.score_text_users(self.text[users])


def run(config: dict[str, Any], out_dir: str | Path | None = None, *, data: Any = None) -> dict[str, Any]:
    """Every model at every number of known target interactions, scored once on the test users."""
    started = time.perf_counter()
    cfg = resolve(config)
    proto, ev = cfg["protocol"], cfg["evaluate"]
    data = load_pair(cfg) if data is None else data
    text_models = [m for m in cfg["models"] if m in TEXT_MODELS]
    frozen = frozen_vectors(cfg["text"], data.items) if text_models and "frozen" in cfg["encoders"] else None
    ks = sorted({int(RANKING.match(m).group(2)) for m in ev["metrics"]})
    rows, splits, tunings = [], [], []
    for seed in cfg["seeds"]:
        split = few_shot_split(data, proto["source"], proto["target"], shots=proto["shots"],
                               eval_ratio=proto["eval_ratio"], val_fraction=proto["val_fraction"],
                               max_eval_users=proto["max_eval_users"], seed=seed)
        splits.append(split.summary())
        vectors = {} if frozen is None else {"frozen": frozen}
        if text_models and "tuned" in cfg["encoders"]:
            tuned = tuned_vectors(cfg["text"], cfg["tuning"], data.items, split.train, seed)
            vectors["tuned"] = tuned.vectors
            tunings.append({"seed": seed, "train_seconds": tuned.train_seconds, "encode_seconds": tuned.encode_seconds,
                            "users": tuned.users, "from_cache": tuned.from_cache})
        bench = FewShotBench(split, cfg, seed, vectors)
        for name in cfg["models"]:
            for encoder in ([e for e in ENCODERS if e in cfg["encoders"]] if name in TEXT_MODELS else [None]):
                for shots in split.shots:
                    tick = time.perf_counter()
                    scorer, fallback = bench.scorer(name, encoder, shots)
                    out = bench.evaluate(scorer, "test", shots, ks)
                    rows.append({"seed": seed, "shots": shots, "model": name, "encoder": encoder,
                                 "users_on_fallback": fallback, "seconds": time.perf_counter() - tick,
                                 "metrics": report({m: out[m] for m in ev["metrics"]}, int(ev["bootstrap"]), seed)})
    results = {"name": cfg["name"], "kind": "fewshot", "config": cfg, "rows": rows, "splits": splits,
               "tuning": tunings, "versions": versions(), "wall_seconds": time.perf_counter() - started}
    if out_dir is not None:
        _write(Path(out_dir), results, [])
    return results


def table(results: dict[str, Any], metric: str = "ndcg@10") -> pd.DataFrame:
    """One row per (model, encoder, shots) of the first seed: mean and 95 % interval of ``metric``."""
    frame = pd.DataFrame([{"seed": r["seed"], "model": r["model"], "encoder": r["encoder"] or "", "shots": r["shots"],
                           **{k: r["metrics"][metric][k] for k in ("mean", "low", "high")}} for r in results["rows"]])
    return frame[frame["seed"] == frame["seed"].min()].drop(columns="seed").reset_index(drop=True)


def format_table(results: dict[str, Any], metric: str = "ndcg@10") -> str:
    """Models down, shots across: ``mean [95% CI]``."""
    frame = table(results, metric)
    shots = sorted(frame["shots"].unique())
    lines = [f"{results['name']}  ({metric} on test users by known target interactions, {results['wall_seconds']:.0f} s)",
             "".ljust(26) + "".join(f"{f'{k} shots':>22}" for k in shots)]
    for (model, encoder), part in frame.groupby(["model", "encoder"], sort=False):
        label = f"{model} [{encoder}]" if encoder else model
        cells = [part[part["shots"] == k].iloc[0] for k in shots]
        lines.append(f"{label:<26}" + "".join(f"{c['mean']:.4f} [{c['low']:.3f},{c['high']:.3f}]".rjust(22) for c in cells))
    return "\n".join(lines)


__all__ = ["DEFAULTS", "MODELS", "format_table", "load_pair", "resolve", "run", "size", "table"]
