"""Transferable sequential recommendation (``kind: sequential``): pre-train a text SASRec on one domain, move it to a new one.

On a new-domain split (``cdtl.data.sequential.new_domain_split``: no user or item shared), a
text-based SASRec (``cdtl.models.sequential.TextSASRec``) is pre-trained on the source
histories, then for each target budget (a share of the target users whose histories may
train) it is scored

- ``text_zero_shot``: as pre-trained, reading the target items' text (no target training);
- ``text_adaptor``: with only its MoE adaptor fine-tuned on the budget's histories;
- ``text_full``: with every weight fine-tuned; ``text_ids_full``: the same plus item IDs;

against models trained on the target budget alone: ``popularity``, ``item_knn`` (last
item), ``gru4rec``, ``sasrec`` and ``text_target`` (the text model without pre-training),
and ``sasrec_shuffled`` (SASRec on shuffled histories at the largest budget: does order
matter?). Every model is scored on every target user's test item, by full ranking of the
target catalogue and among ``evaluate.negatives`` sampled negatives, and each system is
compared with ``evaluate.reference`` on the same users (``cdtl.evaluate.paired_difference``).

That is the default ``protocol.setting: new_domain``. ``protocol.setting: merged`` is C2DSR's
setting instead: shared users' two domains merged in time order, the test target each user's
last target item, ``merged_sasrec`` (it knows each item's domain) against the target-only
models on the same users' target items (``cdtl.experiments.sequential_merged``).
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
from cdtl.data import load
from cdtl.data.sequential import new_domain_split, sampled_negatives, shuffle_histories
from cdtl.evaluate import paired_difference, report
from cdtl.experiments.common import (
    TEXT,
    ConfigError,
    Result,
    check_choices,
    check_ranking_metrics,
    check_train,
    item_vectors,
    merge_config,
    prepare_output,
    ranking_cutoffs,
    summary_of,
    versions,
    write_results,
)
from cdtl.experiments.sections import TextSection, TrainSection, train_section
from cdtl.experiments.sequential_merged import (
    MERGED_MODELS,
    check_setting,
    merged_split,
    merged_system,
    scoring_view,
)
from cdtl.models.sequential import (
    GRU4Rec,
    LastItemKNN,
    SASRec,
    SequencePopularity,
    TextSASRec,
    item_counts,
    next_item_batches,
    rank_next,
    rank_sampled,
    set_trainable,
)
from cdtl.train import fit, set_seed

TARGET_ONLY = ("popularity", "item_knn", "gru4rec", "sasrec", "sasrec_shuffled", "text_target")
TRANSFERRED = ("text_zero_shot", "text_adaptor", "text_full", "text_ids_full")
MODELS = TARGET_ONLY + TRANSFERRED + MERGED_MODELS
TRAIN = train_section(epochs=30, lr=1e-3, monitor="ndcg@10", patience=5)
DEFAULTS: dict[str, Any] = {
    "kind": "sequential",
    "name": "sequential",
    "seed": 0,
    "dataset": {"name": "movielens-100k", "domains": "genre"},
    # target_share: the share of users with enough history in both domains sent to the target
    # setting: new_domain (no user or item shared) or merged (shared users' two domains as one history)
    "protocol": {"setting": "new_domain", "source": "action", "target": "comedy", "target_share": 0.5, "min_length": 3,
                 "budgets": [0.01, 0.05, 0.2, 1.0]},
    "models": list(TARGET_ONLY + TRANSFERRED),
    "model": {"dim": 64, "max_len": 50, "layers": 2, "heads": 1, "dropout": 0.2, "n_experts": 8, "temperature": 0.07,
              "seq_seq_weight": 0.0, "item_drop": 0.2, "knn_k": 100, "sampled_softmax": 0,
              "source_loss_weight": 1.0},
    "text": dict(TEXT),
    "batches": {"batch_size": 128},
    "pretrain": dict(TRAIN),
    "train": dict(TRAIN),
    # val_users: a seeded sample of users scored on validation after every epoch (0: all)
    "evaluate": {"metrics": ["ndcg@10", "recall@10", "mrr@10"], "negatives": 999, "bootstrap": 1000,
                 "reference": "sasrec", "val_users": 2000},
}


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice, so a bad config fails before any data is loaded."""
    cfg = merge_config(DEFAULTS, config, "")
    check_choices(cfg, {"models": MODELS})
    check_setting(cfg)
    check_ranking_metrics(cfg["evaluate"]["metrics"])
    for section in ("pretrain", "train"):
        check_train(cfg[section], section)
    budgets = cfg["protocol"]["budgets"]
    if not budgets or any(isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 < b <= 1 for b in budgets):
        raise ConfigError(f"protocol.budgets must be fractions of target users in (0, 1], got {preview(budgets)}")
    if cfg["evaluate"]["reference"] not in cfg["models"]:
        raise ConfigError(f"evaluate.reference {preview(cfg['evaluate']['reference'])} must be one of models {cfg['models']}")
    if cfg["evaluate"]["negatives"] < 1:
        raise ConfigError("evaluate.negatives must be a positive number of sampled items, got "
                          f"{preview(cfg['evaluate']['negatives'])}")
    return cfg


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """``config`` sized for a profile: at most ``profile.epochs`` epochs, its bootstrap and text length."""
    config = copy.deepcopy(config)
    for section in ("pretrain", "train"):
        part = config.setdefault(section, {})
        part["epochs"] = min(int(part.get("epochs", TRAIN["epochs"])), profile.epochs)
    TextSection.size(config, profile)
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap
    return config


class Context:
    """What every system of one run reads: the split, the sizes, the evaluation users and the text vectors."""

    def __init__(self, cfg: dict[str, Any], split: Any, source_text: torch.Tensor, target_text: torch.Tensor) -> None:
        self.cfg, self.split, self.m, self.ev = cfg, split, cfg["model"], cfg["evaluate"]
        self.ks = ranking_cutoffs(self.ev["metrics"])
        self.source_text, self.target_text = source_text, target_text
        self.seed = cfg["seed"]

    def val_rows(self, part: Any, allowed: np.ndarray | None = None) -> np.ndarray:
        """Validation users (rows of ``part``): the ``allowed`` ones (default all), at most ``evaluate.val_users``."""
        rows = np.arange(part.n_users) if allowed is None else np.asarray(allowed)
        cap = int(self.ev["val_users"])
        if cap and len(rows) > cap:
            rows = np.sort(np.random.default_rng([self.seed, 4]).choice(rows, cap, replace=False))
        return rows

    def train(self, model: torch.nn.Module, part: Any, histories: list[np.ndarray], rows: np.ndarray,
              section: str) -> dict[str, Any]:
        """Fit ``model`` on ``histories`` with ``cfg[section]``, early-stopping on the validation items of ``rows``."""
        monitor = self.cfg[section]["monitor"]
        kw = {}
        if self.m["sampled_softmax"]:
            kw = {"n_items": part.n_items, "n_negatives": int(self.m["sampled_softmax"]),
                  "item_counts": item_counts(histories, part.n_items)}
        batches = next_item_batches(histories, self.m["max_len"], self.cfg["batches"]["batch_size"], **kw)

        def validate(mod: torch.nn.Module) -> dict[str, float]:
            out = rank_next(mod, part, "val", ranking_cutoffs([monitor]), self.m["max_len"], rows=rows)
            return {monitor: float(out[monitor].mean())}

        result = fit(model, batches, TrainSection.of(self.cfg[section]).train_config(self.seed),
                     validate if monitor else None)
        model.cpu().eval()
        return {"best_epoch": result.best_epoch, "epochs": len(result.history), "seconds": result.seconds}

    def id_model(self, name: str, n_items: int) -> torch.nn.Module:
        m = self.m
        set_seed(self.seed)
        if name == "gru4rec":
            return GRU4Rec(n_items, m["dim"], dropout=m["dropout"])
        return SASRec(n_items, m["dim"], max_len=m["max_len"], layers=m["layers"], heads=m["heads"], dropout=m["dropout"])

    def text_model(self, text: torch.Tensor, use_ids: bool = False) -> TextSASRec:
        m = self.m
        set_seed(self.seed)
        return TextSASRec(text, m["dim"], max_len=m["max_len"], layers=m["layers"], heads=m["heads"],
                          dropout=m["dropout"], n_experts=m["n_experts"], temperature=m["temperature"],
                          use_ids=use_ids, seq_seq_weight=m["seq_seq_weight"], item_drop=m["item_drop"])


def _system(ctx: Context, name: str, pretrained: TextSASRec | None, rows: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """Build and train one system on the target histories of ``rows`` (the budget's users)."""
    target = ctx.split.target
    histories = [target.train[r] for r in rows]
    val = ctx.val_rows(target, rows)
    if name in MERGED_MODELS:
        return merged_system(ctx, name, rows)
    if name == "popularity":
        return SequencePopularity(histories, target.n_items), {}
    if name == "item_knn":
        return LastItemKNN(histories, target.n_items, int(ctx.m["knn_k"])), {}
    if name in ("gru4rec", "sasrec", "sasrec_shuffled"):
        model = ctx.id_model(name, target.n_items)
        if name == "sasrec_shuffled":
            histories = shuffle_histories(histories, ctx.seed)
        return model, ctx.train(model, target, histories, val, "train")
    if name == "text_target":
        model = ctx.text_model(ctx.target_text)
        return model, ctx.train(model, target, histories, val, "train")
    assert pretrained is not None
    model = _with_ids(ctx, pretrained) if name == "text_ids_full" else pretrained.with_catalogue(ctx.target_text)
    if name == "text_zero_shot":
        return model.eval(), {}
    set_trainable(model, "adaptor" if name == "text_adaptor" else "full")
    return model, ctx.train(model, target, histories, val, "train")


def _with_ids(ctx: Context, pretrained: TextSASRec) -> TextSASRec:
    """The pre-trained text model with an item-ID table for the target catalogue added (the ID+text variant)."""
    model = ctx.text_model(ctx.target_text, use_ids=True)
    state = {k: v for k, v in pretrained.state_dict().items() if k != "text"}
    model.load_state_dict(state, strict=False)
    return model


def _score(ctx: Context, model: Any, negatives: np.ndarray, target: Any) -> dict[str, np.ndarray]:
    """Per-user metrics on every user's test item of ``target`` (a split): full ranking, ``sampled_*`` among the negatives."""
    max_len = ctx.m["max_len"]
    full = rank_next(model, target, "test", ctx.ks, max_len)
    sampled = rank_sampled(model, target, negatives, "test", ctx.ks, max_len, seed=ctx.seed)
    metrics = ctx.ev["metrics"]
    return {"user": target.users[full["users"]], **{m: full[m] for m in metrics},
            **{f"sampled_{m}": sampled[m] for m in metrics}}


def _plan(cfg: dict[str, Any]) -> list[tuple[str, float]]:
    """(system, budget) pairs to run: zero-shot once (budget 0), the shuffled control at the largest budget, the rest at each."""
    budgets = sorted(float(b) for b in cfg["protocol"]["budgets"])
    plan = []
    for name in cfg["models"]:
        if name == "text_zero_shot":
            plan.append((name, 0.0))
        elif name == "sasrec_shuffled":
            plan.append((name, budgets[-1]))
        else:
            plan += [(name, b) for b in budgets]
    return plan


def run(config: dict[str, Any], out_dir: str | os.PathLike | None = None, *, data: Any = None,
        overwrite: bool = False) -> Result:
    """Pre-train, transfer and score every system at every budget; return the ``Result`` (per-user table included).

    The result's ``models`` hold every trained system under ``(name, budget)`` and the pre-trained
    text model under ``"pretrained"``; ``data`` is the new-domain split (or the merged one).
    """
    started = time.perf_counter()
    cfg = resolve(config)
    out = prepare_output(out_dir, overwrite)
    ds, proto, ev = cfg["dataset"], cfg["protocol"], cfg["evaluate"]
    data = load(ds["name"], ds["domains"]) if data is None else data
    for role in ("source", "target"):
        if proto[role] not in data.domains:
            raise ConfigError(f"protocol.{role} {preview(proto[role])} is not a domain of {data.name}: {data.domains}")
    if proto["setting"] == "merged":
        split = merged_split(data, proto, cfg["seed"])
    else:
        split = new_domain_split(data, proto["source"], proto["target"], target_share=proto["target_share"],
                                 seed=cfg["seed"], min_length=proto["min_length"])
    ctx = Context(cfg, split, *_text_vectors(cfg, data, split))
    negatives = sampled_negatives(split.target, "test", int(ev["negatives"]), seed=cfg["seed"])

    pretrained, pretrain_info = None, None
    if any(name in TRANSFERRED for name in cfg["models"]):
        pretrained = ctx.text_model(ctx.source_text)
        pretrain_info = ctx.train(pretrained, split.pretrain, split.pretrain.train, ctx.val_rows(split.pretrain),
                                  "pretrain")
    frames, runs, models = [], [], {}
    for name, budget in _plan(cfg):
        rows = split.budget_users(budget) if budget > 0 else np.zeros(0, dtype=np.int64)
        model, info = _system(ctx, name, pretrained, rows)
        models[(name, budget)] = model
        scored_on, negs = scoring_view(split, name, negatives)
        frames.append(pd.DataFrame({"system": name, "budget": budget, **_score(ctx, model, negs, scored_on)}))
        runs.append({"system": name, "budget": budget, "train_users": len(rows), **info})
    per_user = pd.concat(frames, ignore_index=True)
    summary = {
        "name": cfg["name"], "kind": "sequential", "config": cfg, "seed": cfg["seed"], "counts": split.summary(),
        "rows": _rows(per_user, ev), "paired": _paired(per_user, ev, cfg["seed"]), "runs": runs,
        "pretrain": pretrain_info, "versions": versions(), "wall_seconds": time.perf_counter() - started,
    }
    if out is not None:
        write_results(out, summary, per_user)
    if pretrained is not None:
        models["pretrained"] = pretrained
    return Result(summary, models, per_user, split)


def _text_vectors(cfg: dict[str, Any], data: Any, split: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen language-model vectors of the source and target catalogues (rows in each split's item order)."""
    if not any(name.startswith("text") for name in cfg["models"]):
        return torch.zeros(1, 1), torch.zeros(1, 1)  # no text model reads them
    items = data.items.assign(item=data.items["item"].astype(str)).drop_duplicates("item").set_index("item", drop=False)
    vectors = []
    for part in (split.pretrain, split.target):
        table = items.loc[part.items].reset_index(drop=True)
        vectors.append(item_vectors(cfg["text"], table)[0])
    return vectors[0], vectors[1]


def _rows(per_user: pd.DataFrame, ev: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (system, budget): every metric's mean and 95 % bootstrap interval, full and sampled."""
    out = []
    columns = [c for c in per_user.columns if c not in ("system", "budget", "user")]
    for (system, budget), part in per_user.groupby(["system", "budget"], sort=False):
        stats = report({c: part[c].to_numpy() for c in columns}, ev["bootstrap"], 0)
        out.append({"system": system, "budget": budget, **stats})
    return out


def _paired(per_user: pd.DataFrame, ev: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """Every system minus the reference on the same users at the same budget (zero-shot against each budget's reference)."""
    reference, metric = ev["reference"], ev["metrics"][0]
    ref = per_user[per_user["system"] == reference]
    out = []
    for (system, budget), part in per_user[per_user["system"] != reference].groupby(["system", "budget"], sort=False):
        for ref_budget, base in ref.groupby("budget"):
            if budget not in (0.0, ref_budget):
                continue
            for view in (metric, f"sampled_{metric}"):
                diff = paired_difference(part[view].to_numpy(), base[view].to_numpy(), n_resamples=ev["bootstrap"],
                                         seed=seed)
                out.append({"system": system, "budget": float(ref_budget), "reference": reference, "metric": view,
                            **{k: diff[k] for k in ("diff", "low", "high", "p", "n", "mean_a", "mean_b")}})
    return out


def results_frame(summary: dict[str, Any] | Result, view: str = "") -> pd.DataFrame:
    """A DataFrame of (system, budget) by metric means; ``view="sampled_"`` for the sampled-negatives metrics."""
    summary = summary_of(summary)
    metrics = summary["config"]["evaluate"]["metrics"]
    return pd.DataFrame([{"system": r["system"], "budget": r["budget"],
                          **{m: r[f"{view}{m}"]["mean"] for m in metrics}} for r in summary["rows"]])


def format_table(summary: dict[str, Any]) -> str:
    """Each system at each budget (full ranking and sampled), then every paired difference with the reference."""
    summary = summary_of(summary)
    metric = summary["config"]["evaluate"]["metrics"][0]
    head = (f"{summary['name']}  (seed {summary['seed']}; {summary['counts']['target']['users']} target users; "
            f"{summary['wall_seconds']:.0f} s)")
    lines = [head]
    for r in summary["rows"]:
        full, samp = r[metric], r[f"sampled_{metric}"]
        lines.append(f"  {r['system']:<16} budget {r['budget']:<5g} {metric} {full['mean']:.4f} [{full['low']:.4f}, "
                     f"{full['high']:.4f}]   sampled {samp['mean']:.4f}")
    lines.append(f"paired differences with {summary['config']['evaluate']['reference']} (same users):")
    for p in summary["paired"]:
        lines.append(f"  {p['system']:<16} budget {p['budget']:<5g} {p['metric']:<18} {p['diff']:+.4f} "
                     f"[{p['low']:+.4f}, {p['high']:+.4f}] p={p['p']:.3f}")
    return "\n".join(lines)


__all__ = ["DEFAULTS", "MODELS", "format_table", "resolve", "results_frame", "run", "size"]
