"""The multi-task experiment's data (every task's training examples and held-out parts) and how each task is scored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.configfile import preview
from cdtl.data import cold_start_split, load
from cdtl.data.crossdomain import encode_split
from cdtl.data.ids import interaction_matrix
from cdtl.data.protocols import per_user_split
from cdtl.evaluate import rating_report, report
from cdtl.experiments.common import ConfigError, Popularity, rank_users, rate_pairs, rating_scale
from cdtl.experiments.sections import TextSection
from cdtl.models.multitask import KNOWN_TASKS, MultiTask

# --------------------------------------------------------------------------- data


@dataclass
class MultiTaskData:
    """The encoded split, each task's training examples and every held-out part, by domain (0 source, 1 target)."""

    cd: Any  # cdtl.data.crossdomain.CrossDomainData
    n_items: list[int]
    item_text: torch.Tensor | None
    train: dict[int, pd.DataFrame]  # domain -> training interactions (u, i, rating)
    rating_scale: tuple[float, float] | None
    held: dict[str, dict[int, pd.DataFrame]]  # "val" / "test" / "warm" -> domain -> held-out interactions
    train_csr: dict[int, Any] = field(default_factory=dict)  # domain -> binary training matrix

    @property
    def n_users(self) -> int:
        return self.cd.n_users

    def examples(self, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A task's training (users, items, ratings)."""
        frame = self.train[KNOWN_TASKS[task].domain]
        return frame["u"].to_numpy(), frame["i"].to_numpy(), frame["rating"].to_numpy(np.float32)

    def counts(self) -> dict[str, Any]:
        """Sizes of every part (JSON-ready)."""
        return {**self.cd.summary(), "train": {str(d): len(f) for d, f in self.train.items()},
                "held": {part: {str(d): len(f) for d, f in by.items()} for part, by in self.held.items()}}


def prepare(cfg: dict[str, Any], data: Any = None) -> MultiTaskData:
    """Load (or take ``data``), split (cold start, then the held-out slices), encode and embed the item texts."""
    proto = cfg["protocol"]
    data = load(cfg["dataset"]["name"], cfg["dataset"]["domains"]) if data is None else data
    for key in ("source", "target"):
        if proto[key] not in data.domains:
            raise ConfigError(f"protocol.{key} {preview(proto[key])} is not a domain of {data.name}: {data.domains}")
    rating_tasks = [t for t in cfg["tasks"] if KNOWN_TASKS[t].kind == "rating"]
    if rating_tasks and not data.has_ratings:
        raise ConfigError(f"rating tasks {rating_tasks} need ratings, but {data.name} has none (implicit feedback)")
    split = cold_start_split(data, proto["source"], proto["target"], proto["cold_ratio"], seed=cfg["seed"])
    cd = encode_split(split)
    h = float(proto["source_holdout"])
    src_train, src_val, src_test = per_user_split(cd.source_train, (1.0 - h, h / 2, h / 2), seed=cfg["seed"])
    w = float(proto["warm_holdout"])
    if w > 0:
        tgt_train, _, warm = per_user_split(cd.target_train, (1.0 - w, 0.0, w), seed=cfg["seed"])
    else:
        tgt_train, warm = cd.target_train, cd.target_train.iloc[:0]
    item_text = None
    if cfg["features"]["text"]:
        from cdtl.encoders.catalogue import encode_items

        emb = encode_items(data.items, **TextSection.of(cfg["text"]).encoder_arguments())
        item_text = torch.cat([emb[cd.item_rows(proto["source"])], emb[cd.item_rows(proto["target"])]])
    n_items = [cd.n_source_items, cd.n_target_items]
    train = {0: src_train, 1: tgt_train}
    out = MultiTaskData(cd, n_items, item_text, train, rating_scale(data),
                        {"val": {0: src_val, 1: cd.val}, "test": {0: src_test, 1: cd.test}, "warm": {1: warm}})
    out.train_csr = {d: interaction_matrix(f["u"].to_numpy(), f["i"].to_numpy(), cd.n_users, n_items[d])
                     for d, f in train.items()}
    return out


# --------------------------------------------------------------------------- evaluation


def primary(task: str, ks: list[int]) -> tuple[str, str]:
    """(metric, mode) a task is selected on: RMSE (lower is better) or NDCG at the first cut-off."""
    return ("rmse", "min") if KNOWN_TASKS[task].kind == "rating" else (f"ndcg@{ks[0]}", "max")


def evaluate_task(cfg: dict[str, Any], data: MultiTaskData, task: str, part: str, predict=None, score_all=None,
                  per_user: bool = False) -> dict[str, Any]:
    """One task's metrics on a held-out part ("val", "test", "warm"), from ``predict(u, i)`` or ``score_all(u)``.

    Rating tasks: ``{rmse, mae}``; click tasks: ``{ndcg@k, recall@k}``, as means over the part
    (``per_user=True``, for validation) or with 95 % bootstrap intervals.
    """
    if per_user:
        values = task_values(cfg, data, task, part, predict, score_all)
        return {} if values is None else values[0]
    return task_scores(cfg, data, task, part, predict, score_all)[0]


def task_values(cfg: dict[str, Any], data: MultiTaskData, task: str, part: str, predict=None,
                score_all=None) -> tuple[dict[str, float], Any, pd.DataFrame] | None:
    """(the metrics' means, the raw evaluation, one row per user) of a task on a held-out part; None when it is empty."""
    spec = KNOWN_TASKS[task]
    frame = data.held[part].get(spec.domain)
    if frame is None or len(frame) == 0:
        return None
    if spec.kind == "rating":
        res = rate_pairs(predict, frame, cfg["evaluate"]["threshold"])
        who = res["per_user"]
        table = pd.DataFrame({"u": who["users"], "rmse": np.sqrt(who["sq_error"]), "mae": who["abs_error"]})
        return {"rmse": res["rmse"], "mae": res["mae"]}, res, table
    metrics = [f"{m}@{k}" for k in cfg["evaluate"]["ks"] for m in ("ndcg", "recall")]
    values = rank_users(score_all, frame, metrics, data.train_csr[spec.domain], batch_size=256)
    table = pd.DataFrame({"u": values.pop("users"), **values})
    return {k: float(v.mean()) for k, v in values.items()}, values, table


def task_scores(cfg: dict[str, Any], data: MultiTaskData, task: str, part: str, predict=None,
                score_all=None) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """A task's metrics on a held-out part with 95 % bootstrap intervals, and its per-user table (user ids decoded)."""
    found = task_values(cfg, data, task, part, predict, score_all)
    if found is None:
        return {}, None
    _, raw, table = found
    boot, seed = cfg["evaluate"]["bootstrap"], cfg["seed"]
    if KNOWN_TASKS[task].kind == "rating":
        summary = rating_report(raw, ("rmse", "mae"), boot, seed)
    else:
        summary = report(raw, boot, seed)
    table.insert(0, "user", data.cd.users.decode(table.pop("u").to_numpy()))
    return summary, table


def model_scorers(model: MultiTask, task: str):
    """(predict(u, i), score_all(u)) of one task of a trained model."""
    return (lambda u, i: model.predict(task, u, i)), (lambda u: model.score_all(task, u))


def trivial_scorers(data: MultiTaskData, task: str):
    """The trivial predictor of a task: the training mean rating, or popularity."""
    spec = KNOWN_TASKS[task]
    train = data.train[spec.domain]
    mean = float(train["rating"].mean())
    popularity = Popularity(train["i"].to_numpy(), data.n_items[spec.domain])
    return (lambda u, i: torch.full((len(u),), mean)), popularity.score_all


def relative_error(task: str, value: float, reference: float) -> float:
    """A task's error relative to the trivial predictor's: 1 is trivial, lower is better."""
    if KNOWN_TASKS[task].kind == "rating":
        return value / reference
    return (1.0 - value) / max(1.0 - reference, 1e-12)
