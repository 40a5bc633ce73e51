"""How the transfer comparison trains each model of one (split, task, seed), and scores it on the cold users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.configfile import preview
from cdtl.data.crossdomain import CrossDomainData
from cdtl.data.ids import interaction_matrix
from cdtl.experiments.common import (
    ConfigError,
    Popularity,
    rank_users,
    rate_pairs,
    rating_scale,
    train_mf,
)
from cdtl.experiments.sections import TrainSection
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
    # the same models with the ranking loss swapped, so that a model and its loss are not confounded
    "emcdr_linear_softmax": "EMCDR (linear) on per-domain MFs trained with the full softmax instead of BPR (ranking only)",
    "lm_bridge_bpr": "language-model bridge trained with BPR instead of the full softmax (ranking only)",
}
TEXT_MODELS = ("lm_bridge", "ptupcdr_lm", "lm_bridge_bpr")  # need the items' language-model vectors
SOURCE_MF_MODELS = ("emcdr_linear", "emcdr_mlp", "ptupcdr", "ptupcdr_lm")  # need the source domain's (BPR) MF
RANKING_ONLY = ("popularity", "emcdr_linear_softmax", "lm_bridge_bpr")  # no rating version: they are about ranking losses
POOLINGS = ("mean", "attention")  # how the LM bridge reads a user's source history
#: the LM bridge's architecture (the ``lm_bridge`` section of every kind that trains one); pooling: mean | attention of the
#: source history (attention reads the max_history most recent items); source_task: also learn from every user's
#: source history (leave-one-out next item)
LM_BRIDGE = {"adaptor": "linear", "dim": 64, "hidden": 256, "dropout": 0.1, "item_bias": True, "whiten": False,
             "pooling": "mean", "max_history": 50, "source_task": False, "source_weight": 1.0}


def train_config(section: dict[str, Any], seed: int, monitor: str | None = None, mode: str = "max") -> TrainConfig:
    """The training loop's config for a model's own section (Adam with the section's training keys, ``TrainSection``)."""
    return TrainSection.within(section).train_config(seed, optimizer="adam", monitor=monitor, mode=mode)


def interaction_batches(frame: pd.DataFrame, n_items: int, task: str, batch_size: int, n_negatives: int = 1,
                        n_users: int | None = None, loss: str = "bpr") -> Callable:
    """Batches of one domain's (u, i[, rating]) training pairs for the task's loss (squared error, BPR or softmax)."""
    u, i = frame["u"].to_numpy(), frame["i"].to_numpy()
    if task == "rating":
        return rating_batches(u, i, frame["rating"].to_numpy(np.float32), batch_size)
    if loss == "softmax":
        return softmax_batches(u, i, n_items, batch_size)
    csr = interaction_matrix(u, i, int(n_users if n_users is not None else u.max() + 1), n_items)
    return bpr_batches(u, i, n_items, batch_size, csr, n_negatives=n_negatives)


def train_domain_mf(frame: pd.DataFrame, n_users: int, n_items: int, task: str, section: dict[str, Any], seed: int,
                    scale: tuple[float, float] | None, loss: str | None = None) -> MF:
    """One domain's MF (BPR for ranking, squared error for rating), a fixed number of epochs, from ``seed``.

    ``loss="softmax"`` trains the ranking MF with the full softmax over the domain's items instead of BPR.
    """
    set_seed(seed)
    if loss == "softmax":
        if task != "ranking":
            raise ConfigError("a softmax-trained MF ranks: it has no rating version")
        model = MF(n_users, n_items, int(section["dim"]), loss="softmax", reg=float(section["reg"]))
        fit(model, interaction_batches(frame, n_items, task, int(section["batch_size"]), loss="softmax"),
            train_config(section, seed))
        return model.cpu().eval()
    model, _ = train_mf(frame, n_users, n_items, train_config(section, seed), loss="bpr" if task == "ranking" else "mse",
                        dim=int(section["dim"]), reg=float(section["reg"]), batch_size=int(section["batch_size"]),
                        n_negatives=int(section["n_negatives"]), rating_scale=scale)
    return model


def source_user_text(cd: CrossDomainData, text: torch.Tensor) -> torch.Tensor:
    """(n_users, D): each user's mean source-item text vector (zero without source history); ``text`` by item-table row."""
    from cdtl.encoders.users import mean_pool

    items, mask = cd.source_histories(None)
    src_text = text[torch.as_tensor(cd.item_rows(cd.split.source))]
    return mean_pool(src_text, [row[m].numpy() for row, m in zip(items, mask)], empty="zeros")


def build_lm_bridge(cd: CrossDomainData, text: torch.Tensor, lm: dict[str, Any], loss: str, *,
                    user_text: torch.Tensor | None = None, global_mean: float = 0.0,
                    rating_scale: tuple[float, float] | None = None, item_known: torch.Tensor | None = None) -> LMBridge:
    """The LM bridge of an ``lm_bridge`` section (``LM_BRIDGE``'s keys) over item text vectors ``text`` (by item-table row).

    ``pooling: attention`` pools each user's ``max_history`` most recent source items with a
    learned attention instead of the mean; ``source_task`` adds the source domain's
    leave-one-out task; ``item_known`` marks the target items with training interactions
    when new items are held out.
    """
    source_text = text[torch.as_tensor(cd.item_rows(cd.split.source))]
    extra: dict[str, Any] = {}
    if lm["source_task"]:
        extra.update(source_text=source_text, source_weight=float(lm["source_weight"]),
                     source_counts=torch.as_tensor(np.bincount(cd.source_train["u"], minlength=cd.n_users),
                                                   dtype=torch.float32))
    if lm["pooling"] == "attention":
        history, mask = cd.source_histories(int(lm["max_history"]))
        extra.update(pooling="attention", source_text=source_text, history=history, history_mask=mask)
    return LMBridge(text[torch.as_tensor(cd.item_rows(cd.split.target))],
                    source_user_text(cd, text) if user_text is None else user_text, **extra,
                    dim=int(lm["dim"]), hidden=int(lm["hidden"]), adaptor=lm["adaptor"], dropout=float(lm["dropout"]),
                    item_bias=bool(lm["item_bias"]), whiten=bool(lm["whiten"]), item_known=item_known, loss=loss,
                    global_mean=global_mean, rating_scale=rating_scale)


def build_ptupcdr(cd: CrossDomainData, source_mf: MF, target_mf: MF, section: dict[str, Any], loss: str,
                  rating_scale: tuple[float, float] | None = None) -> PTUPCDR:
    """PTUPCDR over the two domains' MF, reading each user's ``max_history`` most recent source items."""
    items, mask = cd.source_histories(int(section["max_history"]))
    return PTUPCDR(source_mf, target_mf, items, mask, hidden=int(section["hidden"]), loss=loss,
                   rating_scale=rating_scale)


class FallbackScorer:
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


def monitor_metric(cfg: dict[str, Any], task: str) -> str:
    """The validation metric bridges are early-stopped on: RMSE for ratings, the first NDCG@K for ranking."""
    if task == "rating":
        return "rmse"
    metrics = cfg["evaluate"]["metrics"]
    return next((m for m in metrics if m.startswith("ndcg@")), metrics[0])


def evaluate_users(scorer: Any, cd: CrossDomainData, which: str, task: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Per-user metrics of the ``which`` ("val" or "test") cold users: full ranking of the target catalogue, or rating errors."""
    frame = cd.held_out(which)
    if task == "ranking":
        return rank_users(scorer.score_all, frame, cfg["evaluate"]["metrics"], None, cfg["evaluate"]["batch_size"])
    result = rate_pairs(scorer.predict, frame)
    return {"users": result["per_user"]["users"], "result": result}


# models built on the target domain's MF (``TransferTrainer.target_mf``)
TARGET_MF_MODELS = ("target_mf", "emcdr_linear", "emcdr_mlp", "ptupcdr", "ptupcdr_lm")


class TransferTrainer:
    """Trains the models of one (split, task, seed): the target MF once, then any model by name (``build``)."""

    def __init__(self, cd: CrossDomainData, task: str, cfg: dict[str, Any], seed: int, source_mf: MF | None,
                 text: torch.Tensor | None) -> None:
        self.cd, self.task, self.cfg, self.seed = cd, task, cfg, seed
        self.scale = rating_scale(cd) if task == "rating" else None
        self.has_source = cd.has_source()
        self.source_mf = source_mf
        self.text = text
        self._target_mf: MF | None = None
        self._user_text: torch.Tensor | None = None
        self.popularity = Popularity(cd.target_train["i"].to_numpy(), cd.n_target_items)
        bridged = cd.target_train["u"].isin(np.flatnonzero(self.has_source))
        self.bridge_train = cd.target_train[bridged]  # warm users' target interactions: what bridges learn from

    @property
    def target_mf(self) -> MF:
        if self._target_mf is None:
            self._target_mf = train_domain_mf(self.cd.target_train, self.cd.n_users, self.cd.n_target_items,
                                              self.task, self.cfg["mf"][self.task], self.seed, self.scale)
        return self._target_mf

    def fallback(self) -> Any:
        """Who serves a user without source history: popularity (ranking) or the mean warm user (rating)."""
        if self.task == "ranking":
            return self.popularity
        return MeanUser(self.target_mf, self.cd.warm, rating_scale=self.scale)

    def with_fallback(self, model: Any) -> FallbackScorer:
        return FallbackScorer(model, self.has_source, self.fallback())

    def validator(self) -> Callable[[Any], dict[str, float]]:
        """validate(model) for early stopping: the validation cold users' NDCG (ranking) or RMSE (rating)."""
        monitor, fallback = monitor_metric(self.cfg, self.task), self.fallback()

        def validate(model: Any) -> dict[str, float]:
            out = evaluate_users(FallbackScorer(model, self.has_source, fallback), self.cd, "val", self.task, self.cfg)
            if self.task == "ranking":
                return {monitor: float(np.mean(out[monitor]))}
            return {"rmse": float(out["result"]["rmse"])}

        return validate

    def fit_bridge(self, model: TargetScorer, section: dict[str, Any], batches: Callable | None = None) -> TargetScorer:
        """Train a bridge on warm users' target data (or ``batches``), early-stopped on the validation cold users."""
        set_seed(self.seed)
        if batches is None:  # whole users per batch: each user's bridge is computed once per batch
            batches = group_by_user(interaction_batches(self.bridge_train, self.cd.n_target_items, self.task,
                                                        int(section["batch_size"]), n_users=self.cd.n_users,
                                                        loss=self.loss(section)))
        mode = "min" if self.task == "rating" else "max"
        if self.task == "rating" and "rating_lr" in section:
            section = {**section, "lr": section["rating_lr"]}
        fit(model, batches, train_config(section, self.seed, monitor_metric(self.cfg, self.task), mode), self.validator())
        return model.cpu()

    def loss(self, section: dict[str, Any]) -> str:
        """The training loss of a bridge: squared error for ratings, the section's ranking_loss for ranking."""
        return "mse" if self.task == "rating" else section["ranking_loss"]

    def user_text(self) -> torch.Tensor:
        """(n_users, D): each user's mean source-item text vector (zero without source history)."""
        if self._user_text is None:
            self._user_text = source_user_text(self.cd, self.text)
        return self._user_text

    def lm_bridge(self, loss: str | None = None) -> LMBridge:
        mean = float(self.cd.target_train["rating"].mean()) if self.task == "rating" else 0.0
        return build_lm_bridge(self.cd, self.text, self.cfg["lm_bridge"], loss or self.loss(self.cfg["lm_bridge"]),
                               user_text=self.user_text(), global_mean=mean, rating_scale=self.scale)

    def ptupcdr(self) -> PTUPCDR:
        return build_ptupcdr(self.cd, self.source_mf, self.target_mf, self.cfg["ptupcdr"],
                             self.loss(self.cfg["ptupcdr"]), self.scale)

    def build(self, name: str) -> FallbackScorer:
        """Train model ``name`` and return it wrapped as a ``FallbackScorer``.

        Every model starts from the seed itself, set after the shared target MF exists, so its
        numbers do not depend on which models were built before it in the same cell.
        """
        if name not in MODELS:
            raise ConfigError(f"unknown model {preview(name)}; valid choices: {', '.join(MODELS)}")
        cfg, cd = self.cfg, self.cd
        if self.task == "rating" or name in TARGET_MF_MODELS:
            _ = self.target_mf  # trained once, from the seed alone, before this model draws anything
        set_seed(self.seed)
        if name == "popularity":
            return FallbackScorer(self.popularity, self.has_source)
        if name == "target_mf":
            return FallbackScorer(MeanUser(self.target_mf, cd.warm, rating_scale=self.scale), self.has_source)
        if name in ("emcdr_linear", "emcdr_mlp", "emcdr_linear_softmax"):
            source, target = self.source_mf, self.target_mf
            if name == "emcdr_linear_softmax":
                source, target = self.softmax_mfs()
            model = EMCDR(source, target, mapping=name.split("_")[1], hidden=cfg["mapping"]["hidden"],
                          rating_scale=self.scale)
            warm = cd.warm[self.has_source[cd.warm]]
            batches = user_batches(warm, int(cfg["mapping"]["batch_size"]))
            return self.with_fallback(self.fit_bridge(model, cfg["mapping"], batches))
        if name == "ptupcdr":
            return self.with_fallback(self.fit_bridge(self.ptupcdr(), cfg["ptupcdr"]))
        if name == "lm_bridge":
            batches = None
            if cfg["lm_bridge"]["source_task"]:  # the source task's batches interleaved with the target's
                src, size = cd.source_train, int(cfg["lm_bridge"]["batch_size"])
                batches = domain_batches(
                    softmax_batches(src["u"].to_numpy(), src["i"].to_numpy(), cd.n_source_items, size),
                    group_by_user(interaction_batches(self.bridge_train, cd.n_target_items, self.task, size,
                                                      n_users=cd.n_users, loss=self.loss(cfg["lm_bridge"]))))
            return self.with_fallback(self.fit_bridge(self.lm_bridge(), cfg["lm_bridge"], batches))
        if name == "lm_bridge_bpr":
            return self.with_fallback(self.fit_bridge(self.lm_bridge("bpr"), {**cfg["lm_bridge"], "ranking_loss": "bpr"}))
        if name == "ptupcdr_lm":
            both = PTUPCDRText(self.ptupcdr(), self.lm_bridge(self.loss(cfg["ptupcdr"])))
            return self.with_fallback(self.fit_bridge(both, cfg["ptupcdr"]))
        return self.with_fallback(self.cmf())

    def softmax_mfs(self) -> tuple[MF, MF]:
        """(source, target) MFs trained with the full softmax instead of BPR, with the ``mf.ranking`` settings."""
        cd, section = self.cd, self.cfg["mf"]["ranking"]
        if self.task != "ranking":
            raise ConfigError("emcdr_linear_softmax ranks: it has no rating version")
        return tuple(train_domain_mf(frame, cd.n_users, n, "ranking", section, self.seed, None, loss="softmax")
                     for frame, n in ((cd.source_train, cd.n_source_items), (cd.target_train, cd.n_target_items)))

    def cmf(self) -> CMF:
        c, cd, task = self.cfg["cmf"], self.cd, self.task
        rating = task == "rating"
        model = CMF(cd.n_users, cd.n_source_items, cd.n_target_items, int(c["dim"]), loss="mse" if rating else "bpr",
                    alpha=c["alpha"], reg=float(c["rating_reg"] if rating else c["reg"]),
                    source_mean=float(cd.source_train["rating"].mean()) if rating else 0.0,
                    target_mean=float(cd.target_train["rating"].mean()) if rating else 0.0, rating_scale=self.scale)
        size, negatives = int(c["batch_size"]), int(c["n_negatives"])
        batches = domain_batches(
            interaction_batches(cd.source_train, cd.n_source_items, task, size, negatives, cd.n_users),
            interaction_batches(cd.target_train, cd.n_target_items, task, size, negatives, cd.n_users))
        return self.fit_bridge(model, c, batches)
