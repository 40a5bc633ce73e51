"""The models of the new-item comparison, each trained on one new-item split and scored over the whole target catalogue."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.configfile import preview
from cdtl.data.crossdomain import CrossDomainData
from cdtl.data.newitems import NewItemSplit
from cdtl.encoders.users import mean_pool
from cdtl.experiments.common import Popularity, rank_users, scored_once
from cdtl.experiments.transfer_models import (
    FallbackScorer,
    build_lm_bridge,
    build_ptupcdr,
    train_config,
    train_domain_mf,
)
from cdtl.models.batches import group_by_user, softmax_batches
from cdtl.models.content_knn import ContentKNN
from cdtl.models.dropoutnet import DropoutNet
from cdtl.models.mf import MF
from cdtl.models.text_only import TextOnly, indexed_history_rows
from cdtl.models.transfer import MeanUser, PTUPCDRText
from cdtl.train import fit, set_seed

# name -> what it is; the text models run once per encoder (frozen, tuned)
MODELS = {
    "random": "random scores (the floor where nothing else applies)",
    "popularity": "target popularity (cannot score an item without interactions)",
    "genre_popularity": "popularity of the item's genres (needs a genres column)",
    "mf": "target-domain MF; a user without target history at the mean user (cannot serve new items)",
    "content_knn": "content k-NN: the user's history against each item's text",
    "two_tower": "two-tower: cosine of the mean history vector and the item vector",
    "dropoutnet": "DropoutNet: ids and text, the ids dropped out in training",
    "lm_bridge": "LM bridge: target items by text, users by their source history",
    "ptupcdr_lm": "PTUPCDR + LM bridge (ids and text; a new item's id half is zero)",
}
TEXT_MODELS = ("content_knn", "two_tower", "dropoutnet", "lm_bridge", "ptupcdr_lm")
CELLS = ("warm/old", "warm/new", "cold/old", "cold/new", "mixed/new")  # users/items; mixed: new items among all


class RandomScores:
    """Uniform random scores, fixed per (seed, user) whatever the batch: the floor where nothing else applies."""

    def __init__(self, n_items: int, seed: int = 0) -> None:
        self.n_items, self.seed = int(n_items), int(seed)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        rows = [torch.rand(self.n_items, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + int(u)))
                for u in users]
        return torch.stack(rows) if rows else torch.zeros(0, self.n_items)


class GenrePopularity:
    """Popularity by genre: an item scores the mean training popularity of the items that share its genres.

    A new item has no interaction of its own, but its genres do: score_j = mean over the
    genres g of j of (training interactions with items of g) / (items of g).
    """

    def __init__(self, genres: list[list[str]], train_items: np.ndarray) -> None:
        counts = Popularity(train_items, len(genres)).counts.numpy()
        total: dict[str, float] = {}
        size: dict[str, int] = {}
        for gs, c in zip(genres, counts):
            for g in gs:
                total[g] = total.get(g, 0.0) + float(c)
                size[g] = size.get(g, 0) + 1
        per_genre = {g: total[g] / size[g] for g in total}
        self.scores = torch.tensor([float(np.mean([per_genre[g] for g in gs])) if len(gs) else 0.0 for gs in genres],
                                   dtype=torch.float32)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.scores.expand(len(users), -1)


@dataclass
class Built:
    """A trained model seen by the protocol: scores over the target catalogue, or ``None`` for new items it cannot serve."""

    scorer: Any
    serves_new: bool
    seconds: float = 0.0
    users_on_fallback: int = 0  # evaluated users the model cannot represent, given the declared fallback


def cell_data(cd: CrossDomainData, split: NewItemSplit, which: str, cell: str) -> tuple[pd.DataFrame, np.ndarray, Any]:
    """(held-out pairs, candidate target items, exclusion matrix over the candidates) of one cell of the 2x2."""
    users, items = cell.split("/")
    frame = cd.held_out(which)
    new = np.sort(cd.target_items.encode(split.new_items))
    if users == "mixed":
        frame = frame[frame["item_kind"] == "new"]
        candidates = np.arange(cd.n_target_items)
    else:
        frame = frame[(frame["user_kind"] == users) & (frame["item_kind"] == items)]
        candidates = new if items == "new" else np.setdiff1d(np.arange(cd.n_target_items), new)
    exclude = None if items == "new" and users != "mixed" else cd.train_matrix(split.target)[:, candidates]
    return frame, candidates, exclude


def evaluate_cell(score_all: Callable, cd: CrossDomainData, split: NewItemSplit, which: str, cell: str,
                  metrics: list[str], batch_size: int) -> dict[str, np.ndarray] | None:
    """Per-user ``metrics`` of ``score_all`` on one cell (``users`` are user indices), or None when it has no user."""
    frame, candidates, exclude = cell_data(cd, split, which, cell)
    if frame.empty:
        return None
    column = np.full(cd.n_target_items, -1)
    column[candidates] = np.arange(len(candidates))
    pairs = pd.DataFrame({"u": frame["u"].to_numpy(), "i": column[frame["i"].to_numpy()]})
    cand = torch.as_tensor(candidates)
    return rank_users(lambda u: score_all(u)[:, cand], pairs, metrics, exclude, batch_size)


class NewItemBench:
    """Trains the models of one (split, seed) by name; text models read the item vectors of the encoder asked for."""

    def __init__(self, cd: CrossDomainData, split: NewItemSplit, cfg: dict[str, Any], seed: int,
                 vectors: dict[str, torch.Tensor]) -> None:
        self.cd, self.split, self.cfg, self.seed, self.vectors = cd, split, cfg, seed, vectors
        items = split.data.items
        self.rows = torch.as_tensor(cd.item_rows(split.target))  # target index -> item-table row
        self.history = indexed_history_rows(split.train, items, cd.users)  # both domains, item-table rows
        target = cd.target_train
        self.known = torch.as_tensor(np.bincount(target["i"], minlength=cd.n_target_items) > 0)
        self.has_target = np.bincount(target["u"], minlength=cd.n_users) > 0
        self.has_source = cd.has_source()
        self.has_history = np.array([len(h) > 0 for h in self.history])
        self.popularity = Popularity(target["i"].to_numpy(), cd.n_target_items)
        genres = items["genres"].to_numpy()[self.rows.numpy()] if "genres" in items.columns else None
        self.genre_pop = None if genres is None else GenrePopularity([list(g) for g in genres], target["i"].to_numpy())
        self.prior = self.genre_pop or RandomScores(cd.n_target_items, seed)  # for users a model cannot represent
        self.evaluated = np.concatenate([cd.val_users, cd.test_users])
        self._mfs: dict[str, MF] = {}

    # ------------------------------------------------------------------ pieces

    def mf(self, domain: str) -> MF:
        if domain not in self._mfs:
            source = domain == self.split.source
            frame = self.cd.source_train if source else self.cd.target_train
            n_items = self.cd.n_source_items if source else self.cd.n_target_items
            model = train_domain_mf(frame, self.cd.n_users, n_items, "ranking", self.cfg["mf"], self.seed, None)
            if not source:  # a new item's factors never trained: zero, not the random start
                with torch.no_grad():
                    model.item_emb.weight[~self.known] = 0.0
                    model.item_bias.weight[~self.known] = 0.0
            self._mfs[domain] = model
        return self._mfs[domain]

    def validator(self, wrap: Callable[[Any], Any]) -> Callable[[Any], dict[str, float]]:
        """validate(model): the monitored metric of the validation users, averaged over the cells of the 2x2."""
        return score_validation(lambda model: wrap(model).score_all, self.cd, self.split, self.cfg)

    def fit(self, model: Any, batches: Any, section: dict[str, Any], wrap: Callable[[Any], Any]) -> Any:
        set_seed(self.seed)
        fit(model, batches, train_config(section, self.seed, "val"), self.validator(wrap))
        return model.cpu()

    def bridge_batches(self, section: dict[str, Any]) -> Any:
        target = self.cd.target_train
        target = target[self.has_source[target["u"].to_numpy()]]  # warm users with a source history teach the bridge
        return group_by_user(softmax_batches(target["u"].to_numpy(), target["i"].to_numpy(), self.cd.n_target_items,
                                             int(section["batch_size"])))

    # ------------------------------------------------------------------ the models

    def build(self, name: str, encoder: str | None = None) -> Built:
        """Train model ``name`` (a text model with the item vectors of ``encoder``) and wrap it for the protocol."""
        tick = time.perf_counter()
        set_seed(self.seed)  # every model starts from the same random state, whatever was built before it
        built = self._build(name, None if encoder is None else self.vectors[encoder])
        built.seconds = time.perf_counter() - tick
        return built

    def _served(self, model: Any, serves: np.ndarray) -> Built:
        """A text model: it serves new items, and the users it cannot represent get the prior (counted)."""
        return Built(FallbackScorer(model, serves, self.prior), True,
                     users_on_fallback=int((~serves[self.evaluated]).sum()))

    def _build(self, name: str, vectors: torch.Tensor | None) -> Built:
        cd, cfg = self.cd, self.cfg
        if name == "random":
            return Built(RandomScores(cd.n_target_items, self.seed), True)
        if name == "popularity":
            return Built(self.popularity, False)
        if name == "genre_popularity":
            if self.genre_pop is None:
                raise ValueError(f"{self.split.data.name}: genre_popularity needs a 'genres' column in the item table; "
                                 "use random for data without genres")
            return Built(self.genre_pop, True)
        if name == "mf":
            mf = self.mf(self.split.target)
            return Built(FallbackScorer(mf, self.has_target, MeanUser(mf, np.flatnonzero(self.has_target))), False)
        if name == "content_knn":
            knn = ContentKNN(vectors, self.history, candidates=self.rows.numpy(), k=cfg["knn"]["k"],
                             max_history=cfg["knn"]["max_history"])
            return self._served(knn, knn.has_history)
        if name == "two_tower":
            recent = [h[-int(cfg["tuning"]["max_history"]):] for h in self.history]
            model = TextOnly(vectors, mean_pool(vectors, recent, empty="zeros"), candidates=self.rows.numpy())
            return self._served(model, self.has_history)
        if name == "dropoutnet":
            d = cfg["dropoutnet"]
            model = DropoutNet(vectors[self.rows], self.known, mean_pool(vectors, self.history, empty="zeros"),
                               torch.as_tensor(self.has_target), dim=int(d["dim"]), hidden=int(d["hidden"]),
                               item_dropout=float(d["item_dropout"]), user_dropout=float(d["user_dropout"]),
                               dropout=float(d["dropout"]))
            target = cd.target_train
            batches = softmax_batches(target["u"].to_numpy(), target["i"].to_numpy(), cd.n_target_items,
                                      int(d["batch_size"]))
            wrap = lambda m: FallbackScorer(m, self.has_history, self.prior)  # noqa: E731
            return self._served(self.fit(model, batches, d, wrap), self.has_history)
        if name in ("lm_bridge", "ptupcdr_lm"):
            section = cfg["lm_bridge"] if name == "lm_bridge" else cfg["ptupcdr"]
            model = build_lm_bridge(cd, vectors, cfg["lm_bridge"], "softmax", item_known=self.known)
            if name == "ptupcdr_lm":
                ptu = build_ptupcdr(cd, self.mf(self.split.source), self.mf(self.split.target), cfg["ptupcdr"],
                                    "softmax")
                model = PTUPCDRText(ptu, model)
            wrap = lambda m: FallbackScorer(m, self.has_source, self.prior)  # noqa: E731
            return self._served(self.fit(model, self.bridge_batches(section), section, wrap), self.has_source)
        raise ValueError(f"unknown model {preview(name)}; valid choices: {', '.join(MODELS)}")


def score_validation(scores_of: Callable[[Any], Callable], cd: CrossDomainData, split: NewItemSplit,
                     cfg: dict[str, Any]) -> Callable[[Any], dict[str, float]]:
    """validate(x): the monitored metric of the validation users with ``scores_of(x)``, averaged over the 2x2's cells."""
    metric = cfg["evaluate"]["monitor"]

    users = cd.held_out("val")["u"].to_numpy()

    def validate(x: Any) -> dict[str, float]:
        score_all = scored_once(scores_of(x), users, int(cfg["evaluate"]["batch_size"]))
        means = [float(np.mean(out[metric])) for cell in CELLS[:4]
                 if (out := evaluate_cell(score_all, cd, split, "val", cell, [metric],
                                          int(cfg["evaluate"]["batch_size"]))) is not None]
        return {"val": float(np.mean(means))}

    return validate


__all__ = ["CELLS", "MODELS", "TEXT_MODELS", "Built", "GenrePopularity", "NewItemBench", "RandomScores", "cell_data",
           "evaluate_cell", "score_validation"]
