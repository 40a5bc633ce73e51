"""The new-domain comparison of chapter 05 (``kind: fewshot``): no user shared in training, test users known by 0, 1,
3 or 5 target interactions."""

from __future__ import annotations

import copy
import os
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.configfile import check_cutoffs, preview
from cdtl.data import load
from cdtl.data.fewshot import SHOTS, cross_platform, few_shot_split
from cdtl.data.ids import IdMap, interaction_matrix
from cdtl.data.sampling import sample_users
from cdtl.encoders.users import mean_pool
from cdtl.evaluate import report
from cdtl.experiments.common import (
    ENCODERS,
    TEXT,
    TUNING,
    ConfigError,
    Popularity,
    Result,
    check_choices,
    check_ranking_metrics,
    check_tuning,
    item_vectors,
    merge_config,
    prepare_output,
    rank_users,
    scored_once,
    size_text,
    summary_of,
    versions,
    write_results,
)
from cdtl.experiments.sections import TrainSection, mf_section
from cdtl.experiments.transfer_models import FallbackScorer, train_config, train_domain_mf
from cdtl.models.batches import softmax_batches
from cdtl.models.content_knn import ContentKNN
from cdtl.models.dropoutnet import DropoutNet
from cdtl.models.text_only import TextOnly, indexed_history_rows
from cdtl.train import fit, set_seed

MODELS = {
    "popularity": "target popularity (target-only)",
    "target_knn": "item k-NN over target-domain MF factors of the known items (target-only; popularity at 0 shots)",
    "content_knn": "content k-NN: source history and known target items against each item's text",
    "two_tower": "two-tower: cosine of the mean history vector and the item vector",
    "dropoutnet": "DropoutNet trained on the target's own users; a test user is the mean text of what is known",
    "blend": "target_knn (popularity at 0 shots) + beta x the two-tower's text score, beta chosen on validation users",
}
TEXT_MODELS = ("content_knn", "two_tower", "dropoutnet", "blend")
TARGET_ONLY = ("popularity", "target_knn")  # what a target domain can do on its own
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
    "mf": mf_section(),
    "knn": {"k": 10, "max_history": 100},
    # the weights of the text score the blend tries on the validation users (0: the target-only model alone)
    "blend": {"betas": [0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]},
    "dropoutnet": {**TrainSection.flat(lr=0.003, epochs=30, patience=3, batch_size=1024), "dim": 64, "hidden": 256,
                   "item_dropout": 0.5, "user_dropout": 0.5, "dropout": 0.1},
    "evaluate": {"metrics": ["recall@10", "ndcg@10"], "monitor": "ndcg@10", "bootstrap": 1000, "batch_size": 2048},
}


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice before any data is loaded."""
    cfg = merge_config(DEFAULTS, config, "")
    check_choices(cfg, {"models": MODELS, "encoders": ENCODERS})
    check_tuning(cfg["tuning"])
    shots = cfg["protocol"]["shots"]
    if not shots or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in shots):
        raise ConfigError(f"protocol.shots must be non-negative integers, e.g. {list(SHOTS)}, got {preview(shots)}")
    check_ranking_metrics(cfg["evaluate"]["metrics"])
    betas = cfg["blend"]["betas"]
    if not betas or any(isinstance(b, bool) or not isinstance(b, (int, float)) or b < 0 for b in betas):
        raise ConfigError(f"blend.betas must be non-negative numbers, e.g. [0.0, 0.5, 1.0], got {preview(betas)}")
    if cfg["evaluate"]["monitor"] not in cfg["evaluate"]["metrics"]:
        raise ConfigError(f"evaluate.monitor must be one of evaluate.metrics, got {preview(cfg['evaluate']['monitor'])}")
    return cfg


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """``config`` sized for a profile (as the new-item comparison is): one seed, epoch caps, text and tuning, a user sample."""
    config = copy.deepcopy(config)
    cfg = resolve(config)
    for section in ("mf", "dropoutnet"):
        config.setdefault(section, {})["epochs"] = min(int(cfg[section]["epochs"]), profile.epochs)
    config["seeds"] = list(profile.seeds[:1])
    size_text(config, profile)
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


def read_items_vectors(cfg: dict[str, Any], split: Any) -> torch.Tensor:
    """The frozen vectors of the items a few-shot model reads (the target catalogue, what the evaluation users are known
    by), in rows of the item table; the other rows (source items of source-only users) are never read and stay zero."""
    items = split.data.items
    read = ((items["domain"] == split.target) | items["item"].isin(split.source_known["item"])
            | items["item"].isin(split.known["item"])).to_numpy()
    vectors, _ = item_vectors(cfg["text"], items[read])
    out = torch.zeros(len(items), vectors.shape[1])
    out[torch.tensor(read)] = vectors
    return out


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
        self.popularity = Popularity(self.i, len(self.items))
        self.trained_models: dict[Any, Any] = {}
        self._histories: dict[int, list[np.ndarray]] = {}

    def histories(self, shots: int) -> list[np.ndarray]:
        """Each evaluation user's known interactions at ``shots`` (source history + first ``shots`` target items)."""
        if shots not in self._histories:
            self._histories[shots] = indexed_history_rows(self.split.history(self.eval_users.ids, shots),
                                                          self.split.data.items, self.eval_users)
        return self._histories[shots]

    def known_target(self, shots: int) -> Any:
        """The (n_eval_users, n_target_items) matrix of the target items known at ``shots``: never recommended."""
        known = self.split.known[self.split.known["position"] < shots]
        return interaction_matrix(self.eval_users.encode(known["user"]), self.items.encode(known["item"]),
                                  len(self.eval_users), len(self.items))

    def trained(self, name: str, encoder: str | None) -> Any:
        """The models that learn from training data (target MF, DropoutNet), trained once per split."""
        key = (name, encoder)
        if key not in self.trained_models:
            set_seed(self.seed)
            if name == "target_knn":
                self.trained_models[key] = train_domain_mf(pd.DataFrame({"u": self.u, "i": self.i}), len(self.train_users),
                                                     len(self.items), "ranking", self.cfg["mf"], self.seed, None)
            else:
                self.trained_models[key] = self._dropoutnet(self.vectors[encoder])
        return self.trained_models[key]

    def _dropoutnet(self, vectors: torch.Tensor) -> DropoutNet:
        d = self.cfg["dropoutnet"]
        known = torch.as_tensor(np.bincount(self.i, minlength=len(self.items)) > 0)
        target = self.split.train[self.split.train["domain"] == self.split.target]
        user_text = mean_pool(vectors, indexed_history_rows(target, self.split.data.items, self.train_users), empty="zeros")
        model = DropoutNet(vectors[self.rows], known, user_text, torch.ones(len(self.train_users), dtype=torch.bool),
                           dim=int(d["dim"]), hidden=int(d["hidden"]), item_dropout=float(d["item_dropout"]),
                           user_dropout=float(d["user_dropout"]), dropout=float(d["dropout"]))
        metric = self.cfg["evaluate"]["monitor"]

        def validate(m: DropoutNet) -> dict[str, float]:
            outs = [self.evaluate(self._text_scorer(m, vectors, k), "val", k, [metric]) for k in self.split.shots]
            return {"val": float(np.mean([np.mean(o[metric]) for o in outs]))}

        fit(model, softmax_batches(self.u, self.i, len(self.items), int(d["batch_size"])),
            train_config(d, self.seed, "val"), validate)
        return model.cpu()

    def _text_scorer(self, model: DropoutNet, vectors: torch.Tensor, shots: int) -> FallbackScorer:
        histories = self.histories(shots)
        has = np.array([len(h) > 0 for h in histories])
        return FallbackScorer(_ByText(model, mean_pool(vectors, histories, empty="zeros")), has, self.popularity)

    def scorer(self, name: str, encoder: str | None, shots: int, beta: float = 0.0) -> tuple[Any, int]:
        """(scorer over the target catalogue for evaluation-user indices, users on the popularity fallback)."""
        histories = self.histories(shots)
        has = np.array([len(h) > 0 for h in histories])
        fallback = self.popularity
        if name == "popularity":
            return fallback, 0
        if name == "blend":
            (base, lacking), (text, _) = self.scorer("target_knn", None, shots), self.scorer("two_tower", encoder, shots)
            if lacking == len(self.eval_users):  # no known target item (0 shots): the base is popularity
                base = self.popularity
            return Blend(base, text, beta), lacking
        if name == "target_knn":
            known = self.split.history(self.eval_users.ids, shots)
            known = known[known["domain"] == self.split.target]
            lists = indexed_history_rows(known, self.split.data.items.iloc[self.rows].reset_index(drop=True),
                                         self.eval_users)
            knn = ContentKNN(self.trained(name, None).item_emb.weight.detach(), lists, k=self.cfg["knn"]["k"])
            return FallbackScorer(knn, knn.has_history, fallback), int((~knn.has_history).sum())
        vectors = self.vectors[encoder]
        if name == "content_knn":
            model = ContentKNN(vectors, histories, candidates=self.rows, k=self.cfg["knn"]["k"],
                               max_history=self.cfg["knn"]["max_history"])
        elif name == "two_tower":
            recent = [h[-int(self.cfg["tuning"]["max_history"]):] for h in histories]
            model = TextOnly(vectors, mean_pool(vectors, recent, empty="zeros"), candidates=self.rows)
        elif name == "dropoutnet":
            return self._text_scorer(self.trained(name, encoder), vectors, shots), int((~has).sum())
        else:
            raise ConfigError(f"unknown model {preview(name)}; valid choices: {', '.join(MODELS)}")
        return FallbackScorer(model, has, fallback), int((~has).sum())

    def choose(self, name: str, encoder: str | None, shots: int) -> tuple[float, dict[str, float]]:
        """(the blend's beta with the best validation score, or 0 for other models; that scorer's validation means)."""
        metrics, monitor = self.cfg["evaluate"]["metrics"], self.cfg["evaluate"]["monitor"]
        best: tuple[float, dict[str, float]] | None = None
        scorers = [(0.0, self.scorer(name, encoder, shots)[0])]
        if name == "blend":  # the two parts scored once for the validation users, then mixed at every beta
            blend, size = scorers[0][1], int(self.cfg["evaluate"]["batch_size"])
            users = self.eval_users.encode(self.split.held_out("val")["user"])
            base, text = (SimpleNamespace(score_all=scored_once(part.score_all, users, size))
                          for part in (blend.base, blend.text))
            scorers = [(beta, Blend(base, text, beta, log_base=blend.log_base)) for beta in self.cfg["blend"]["betas"]]
        for beta, scorer in scorers:
            out = self.evaluate(scorer, "val", shots, metrics)
            val = {m: float(np.mean(out[m])) for m in metrics}
            if best is None or val[monitor] > best[1][monitor]:
                best = (float(beta), val)
        return best

    def evaluate(self, scorer: Any, which: str, shots: int, metrics: list[str]) -> dict[str, np.ndarray]:
        """Per-user ``metrics`` of the ``which`` users at ``shots``: every target item ranked but the known ones."""
        frame = self.split.held_out(which)
        pairs = pd.DataFrame({"u": self.eval_users.encode(frame["user"]), "i": self.items.encode(frame["item"])})
        return rank_users(scorer.score_all, pairs, metrics, self.known_target(shots),
                          int(self.cfg["evaluate"]["batch_size"]))


class Blend:
    """``z(base) + beta * z(text)``: each scorer's scores standardised per user, the text's weighed by ``beta``.

    Popularity counts (the base at 0 shots) are read as log(1 + count) first, so a handful of
    best-sellers does not swamp the standardised scale. beta = 0 ranks exactly as the base.
    """

    def __init__(self, base: Any, text: Any, beta: float, *, log_base: bool | None = None) -> None:
        self.base, self.text, self.beta = base, text, float(beta)
        self.log_base = isinstance(base, Popularity) if log_base is None else bool(log_base)  # counts: read as log(1 + n)

    @staticmethod
    def standard(scores: torch.Tensor) -> torch.Tensor:
        return (scores - scores.mean(1, keepdim=True)) / scores.std(1, keepdim=True).clamp(min=1e-8)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        base = self.base.score_all(users).float()
        if self.log_base:
            base = torch.log1p(base)
        mixed = self.standard(base)
        return mixed if self.beta == 0 else mixed + self.beta * self.standard(self.text.score_all(users).float())


class _ByText:
    """DropoutNet scoring users known only by the mean text of their history (no id)."""

    def __init__(self, model: DropoutNet, text: torch.Tensor) -> None:
        self.model, self.text = model, text

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.model.score_text_users(self.text[users])


def run(config: dict[str, Any], out_dir: str | os.PathLike | None = None, *, data: Any = None,
        overwrite: bool = False) -> Result:
    """Every model at every number of known target interactions, scored once on the test users.

    The result's ``models`` are the trained ones (``{(name, encoder): model}``) and its ``data`` the split.
    ``out_dir`` must not hold an earlier run unless ``overwrite``.
    """
    started = time.perf_counter()
    cfg = resolve(config)
    results_dir = prepare_output(out_dir, overwrite)
    proto, ev = cfg["protocol"], cfg["evaluate"]
    data = load_pair(cfg) if data is None else data
    text_models = [m for m in cfg["models"] if m in TEXT_MODELS]
    rows, splits, tunings, kept, per_user = [], [], [], Result({}), []
    check_cutoffs(ev["metrics"], int((data.items["domain"] == proto["target"]).sum()))
    for seed in cfg["seeds"]:
        split = few_shot_split(data, proto["source"], proto["target"], shots=proto["shots"],
                               eval_ratio=proto["eval_ratio"], val_fraction=proto["val_fraction"],
                               max_eval_users=proto["max_eval_users"], seed=seed)
        splits.append(split.summary())
        vectors = {}
        if text_models and "frozen" in cfg["encoders"]:
            vectors["frozen"] = read_items_vectors(cfg, split)
        if text_models and "tuned" in cfg["encoders"]:
            vectors["tuned"], cost = item_vectors(cfg["text"], data.items, "tuned", tuning=cfg["tuning"],
                                                  train=split.train, seed=seed)
            tunings.append(cost)
        bench = FewShotBench(split, cfg, seed, vectors)
        for name in cfg["models"]:
            for encoder in ([e for e in ENCODERS if e in cfg["encoders"]] if name in TEXT_MODELS else [None]):
                for shots in split.shots:
                    tick = time.perf_counter()
                    beta, val = bench.choose(name, encoder, shots)
                    scorer, fallback = bench.scorer(name, encoder, shots, beta)
                    out = bench.evaluate(scorer, "test", shots, ev["metrics"])
                    rows.append({"seed": seed, "shots": shots, "model": name, "encoder": encoder,
                                 "users_on_fallback": fallback, "seconds": time.perf_counter() - tick,
                                 "metrics": report({m: out[m] for m in ev["metrics"]}, int(ev["bootstrap"]), seed),
                                 "validation": val, **({"beta": beta} if name == "blend" else {})})
                    per_user.append(pd.DataFrame({"seed": seed, "shots": shots, "model": name, "encoder": encoder or "",
                                                  "user": bench.eval_users.decode(out["users"]),
                                                  **{m: out[m] for m in ev["metrics"]}}))
        if seed == cfg["seeds"][0]:
            kept.models, kept.data = dict(bench.trained_models), split
    summary = {"name": cfg["name"], "kind": "fewshot", "config": cfg, "rows": rows, "splits": splits,
               "tuning": tunings, "versions": versions(), "wall_seconds": time.perf_counter() - started}
    table_per_user = pd.concat(per_user, ignore_index=True) if per_user else None
    if results_dir is not None:
        write_results(results_dir, summary, table_per_user)
    return Result(summary, kept.models, table_per_user, kept.data)


def table(summary: dict[str, Any] | Result, metric: str = "ndcg@10") -> pd.DataFrame:
    """One row per (model, encoder, shots) of the first seed: test mean and 95 % interval of ``metric``, validation mean."""
    frame = pd.DataFrame([{"seed": r["seed"], "model": r["model"], "encoder": r["encoder"] or "", "shots": r["shots"],
                           **{k: r["metrics"][metric][k] for k in ("mean", "low", "high")},
                           "val": r.get("validation", {}).get(metric, np.nan), "beta": r.get("beta", np.nan)}
                          for r in summary_of(summary)["rows"]])
    frame["label"] = frame["model"] + np.where(frame["encoder"] != "", " [" + frame["encoder"] + "]", "")
    return frame[frame["seed"] == frame["seed"].min()].drop(columns="seed").reset_index(drop=True)


def format_table(summary: dict[str, Any] | Result, metric: str = "ndcg@10") -> str:
    """Models down, shots across: ``mean [95% CI]``."""
    summary = summary_of(summary)
    frame = table(summary, metric)
    shots = sorted(frame["shots"].unique())
    lines = [f"{summary['name']}  ({metric} on test users by known target interactions, {summary['wall_seconds']:.0f} s)",
             "".ljust(26) + "".join(f"{f'{k} shots':>22}" for k in shots)]
    for (model, encoder), part in frame.groupby(["model", "encoder"], sort=False):
        label = f"{model} [{encoder}]" if encoder else model
        cells = [part[part["shots"] == k].iloc[0] for k in shots]
        lines.append(f"{label:<26}" + "".join(f"{c['mean']:.4f} [{c['low']:.3f},{c['high']:.3f}]".rjust(22) for c in cells))
    for t in summary.get("tuning", []):
        lines.append(f"\ntuned encoder (seed {t['seed']}): {t['train_seconds']:.0f} s fine-tuning on {t['users']} users, "
                     f"{t['encode_seconds']:.0f} s encoding{' (cached)' if t['from_cache'] else ''}")
    return "\n".join(lines)


__all__ = [
    "Blend", "DEFAULTS", "MODELS", "TARGET_ONLY", "TEXT_MODELS", "format_table", "load_pair", "resolve", "run", "size",
    "table"
]
