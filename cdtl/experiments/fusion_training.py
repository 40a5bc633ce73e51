"""How the fusion experiment trains its base scorers and fits the fusion on validation data only."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from cdtl.configfile import preview
from cdtl.experiments.common import Popularity, rank_users, train_mf
from cdtl.experiments.fusion_data import FusionData
from cdtl.experiments.sections import TextSection, TrainSection
from cdtl.models.fusion import Scorer, SoftmaxFusion, fusion_batches, gate_features, score_scales
from cdtl.train import TrainResult, fit, set_seed


def train_target_mf(cfg: dict[str, Any], fd: FusionData) -> tuple[Any, TrainResult]:
    """Target-domain BPR-MF on the base training part, early-stopped (if the config monitors) on warm validation users."""
    m, cd = cfg["mf"], fd.cd
    warm_fit = fd.fit[~fd.fit["u"].isin(fd.cold_fit_users)]

    def validate(model: Any) -> dict[str, float]:
        score_all = lambda u: model.score_all(u.to(next(model.parameters()).device)).cpu()  # noqa: E731
        res = rank_users(score_all, warm_fit, cfg["evaluate"]["metrics"], fd.fit_exclude, cfg["evaluate"]["batch_size"])
        return {k: float(v.mean()) for k, v in res.items() if k != "users"}

    config = TrainSection.of(m["train"]).train_config(cfg["seed"])
    return train_mf(cd.target_train, cd.n_users, cd.n_target_items, config, dim=m["dim"], reg=m["reg"],
                    batch_size=m["batch_size"], n_negatives=m["n_negatives"], exclude=fd.fit_exclude, validate=validate)


def text_user_vectors(fd: FusionData, item_text: torch.Tensor) -> torch.Tensor:
    """(n_users, d): each user's mean language-model vector over their source and target training items (0 if none)."""
    from cdtl.encoders.users import mean_pool

    cd = fd.cd
    rows = np.concatenate([cd.item_rows(cd.split.source)[cd.source_train["i"].to_numpy()],
                           cd.item_rows(cd.split.target)[cd.target_train["i"].to_numpy()]])
    users = np.concatenate([cd.source_train["u"].to_numpy(), cd.target_train["u"].to_numpy()])
    order = np.argsort(users, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=cd.n_users))])
    return mean_pool(item_text, (indptr, rows[order]), empty="zeros")


def build_scorers(cfg: dict[str, Any], fd: FusionData) -> tuple[dict[str, Scorer], dict[str, Any], dict[str, Any]]:
    """The configured base scorers, trained on the base training part, notes on their training, and the trained models.

    The models (``MF``, ``LMBridge``, ``TextOnly``, ``Popularity``) are returned by name, so whoever needs one
    (a serving bundle) takes it from there rather than from the scorer's bound method.
    """
    cd = fd.cd
    items = cd.target_items.ids
    n_users = cd.n_users
    scorers: dict[str, Scorer] = {}
    notes: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for name in cfg["scorers"]:
        set_seed(cfg["seed"])
        if name == "popularity":
            popularity = Popularity(cd.target_train["i"].to_numpy(), cd.n_target_items)
            scorers[name] = Scorer(name, popularity.score_all, items, np.ones(n_users, bool))
            models[name] = popularity
        elif name == "mf":
            model, result = train_target_mf(cfg, fd)
            notes["mf"] = {"best_epoch": result.best_epoch, "epochs_run": len(result.history),
                           "best_val": result.best_metric}
            scorers[name] = Scorer(name, model.score_all, items, fd.target_len > 0)
            models[name] = model
        elif name == "text":
            from cdtl.encoders.catalogue import encode_items
            from cdtl.models.text_only import TextOnly

            t = cfg["text"]
            emb = encode_items(cd.split.data.items, **TextSection.of(t).encoder_arguments())
            text = TextOnly(emb, text_user_vectors(fd, emb), candidates=cd.item_rows(cd.split.target),
                            whiten=t["whiten"], whiten_dim=t["whiten_dim"])
            scorers[name] = Scorer(name, text.score_all, items, (fd.source_len + fd.target_len) > 0)
            models[name] = text
        else:  # lm_bridge: the language-model bridge of the transfer comparison
            from cdtl.experiments.transfer import fit_model

            section = cfg["lm_bridge"]
            model = fit_model(section["model"], cd, section["config"], task="ranking", seed=cfg["seed"])
            scorers[name] = Scorer(name, model.score_all, items, fd.source_len > 0)
            models[name] = model.model  # the LMBridge inside its popularity-fallback wrapper
    return scorers, notes, models


def alone(scorer: Scorer, fallback: Scorer) -> Any:
    """``score_all`` of one scorer on its own: its scores where it can serve the user, ``fallback``'s elsewhere."""
    serve = torch.as_tensor(np.asarray(scorer.can_serve), dtype=torch.bool)

    def score_all(users: torch.Tensor) -> torch.Tensor:
        own = scorer.score_all(users).float().cpu()
        return torch.where(serve[users][:, None], own, fallback.score_all(users).float().cpu())

    return score_all


# --------------------------------------------------------------------------- fusion


def initial_temperatures(cfg: dict[str, Any], fd: FusionData, scorers: dict[str, Scorer]) -> list[float]:
    """T_k to start from: the configured number, or (``auto``) each scorer's score spread on the validation users."""
    t = cfg["fusion"]["temperature"]
    if t != "auto":
        return [float(t)] * len(scorers)
    if cfg["fusion"]["standardize"]:  # standardised rows have spread 1
        return [1.0] * len(scorers)
    return score_scales(list(scorers.values()), np.unique(fd.fit["u"]))


def calibrate(cfg: dict[str, Any], fd: FusionData, scorers: dict[str, Scorer]) -> list[float]:
    """Each scorer's temperature fitted alone, by cross-entropy on the validation users it can serve.

    Fusing *calibrated* distributions keeps temperatures and weights apart: a temperature
    says how sure a scorer's distribution should be, a weight how much it counts.
    """
    start = initial_temperatures(cfg, fd, scorers)
    out = []
    for (name, scorer), t in zip(scorers.items(), start):
        serve = np.asarray(scorer.can_serve, dtype=bool)
        part = fd.fit[serve[fd.fit["u"].to_numpy()]]
        if len(part) == 0:
            raise ValueError(f"scorer {preview(name)} can serve no validation user: its temperature cannot be calibrated")
        everyone = dataclasses.replace(scorer, can_serve=np.ones(len(serve), bool))  # only served users are fed
        one = SoftmaxFusion([everyone], fd.cd.target_items.ids, mode="uniform", temperature=t,
                            standardize=cfg["fusion"]["standardize"])
        batches = fusion_batches(part["u"].to_numpy(), part["i"].to_numpy(), fd.cd.n_target_items,
                                 cfg["fusion"]["batch_size"], fd.fit_exclude)
        fit(one, batches, TrainSection.of(cfg["fusion"]["train"]).train_config(cfg["seed"]))
        out.append(float(one.temperatures[0]))
    return out


def make_fusion(cfg: dict[str, Any], fd: FusionData, scorers: dict[str, Scorer], mode: str,
                temperatures: list[float] | None = None) -> SoftmaxFusion:
    """An untrained ``SoftmaxFusion`` of ``scorers`` in ``mode``; with ``temperatures`` (calibrated) they stay fixed."""
    f = cfg["fusion"]
    listed = list(scorers.values())
    can_serve = torch.stack([torch.as_tensor(np.asarray(s.can_serve), dtype=torch.bool) for s in listed], dim=1)
    features = gate_features(fd.source_len, fd.target_len, can_serve) if mode == "user" else None
    fixed = temperatures is not None
    set_seed(cfg["seed"])
    return SoftmaxFusion(listed, fd.cd.target_items.ids, mode=mode, features=features, hidden=f["hidden"],
                         temperature=temperatures if fixed else initial_temperatures(cfg, fd, scorers),
                         learn_temperature=not fixed, standardize=f["standardize"], pooling=f["pooling"])


def fit_fusion(cfg: dict[str, Any], fd: FusionData, scorers: dict[str, Scorer], mode: str,
               temperatures: list[float] | None = None) -> tuple[SoftmaxFusion, TrainResult]:
    """A ``SoftmaxFusion`` fitted by cross-entropy on the validation part only (``fd.fit``).

    With ``temperatures`` (from ``calibrate``) only the weights learn; without, the
    temperatures learn together with them.
    """
    fusion = make_fusion(cfg, fd, scorers, mode, temperatures)
    if not any(p.requires_grad for p in fusion.parameters()):  # uniform weights, fixed temperatures
        return fusion.eval(), TrainResult()
    batches = fusion_batches(fd.fit["u"].to_numpy(), fd.fit["i"].to_numpy(), fd.cd.n_target_items,
                             cfg["fusion"]["batch_size"], fd.fit_exclude)
    result = fit(fusion, batches, TrainSection.of(cfg["fusion"]["train"]).train_config(cfg["seed"]))
    return fusion.cpu().eval(), result
