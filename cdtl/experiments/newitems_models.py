"""The models of the new-item comparison, each trained on one new-item split and scored over the whole target catalogue."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from cdtl.comparisons.transfer import Popularity, Scorer, train_mf
from cdtl.data.crossdomain import CrossDomainData
from cdtl.data.ids import interaction_matrix
from cdtl.data.newitems import NewItemSplit
from cdtl.evaluate import evaluate_ranking, group_items, popularity_scores
from cdtl.experiments.text_common import GenrePopularity, RandomScores, mean_text, user_histories
from cdtl.models.batches import group_by_user, softmax_batches
from cdtl.models.content_knn import ContentKNN
from cdtl.models.dropoutnet import DropoutNet
from cdtl.models.mf import MF
from cdtl.models.text_only import TextOnly
from cdtl.models.transfer import PTUPCDR, LMBridge, MeanUser, PTUPCDRText
from cdtl.train import TrainConfig, fit, set_seed

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


@dataclass
class Built:
    """A trained model seen by the protocol: scores over the target catalogue, or ``None`` for new items it cannot serve."""

    scorer: Any
    serves_new: bool
    seconds: float
    users_on_fallback: int = 0  # evaluated users the model cannot represent, given the declared fallback


def cell_data(cd: CrossDomainData, split: NewItemSplit, which: str, cell: str) -> tuple[Any, np.ndarray, Any]:
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
                  ks: list[int], batch_size: int) -> dict[str, np.ndarray] | None:
    """Per-user metrics of ``score_all`` on one cell (``users`` are user indices), or None when it has no user."""
    frame, candidates, exclude = cell_data(cd, split, which, cell)
    if frame.empty:
        return None
    column = np.full(cd.n_target_items, -1)
    column[candidates] = np.arange(len(candidates))
    users, relevant = group_items(frame["u"].to_numpy(), column[frame["i"].to_numpy()])
    cand = torch.as_tensor(candidates)
    out = evaluate_ranking(lambda u: score_all(u)[:, cand], users, relevant, exclude, ks, batch_size)
    return {"users": users, **out}


class NewItemBench:
    """Trains the models of one (split, seed) by name; text models read the item vectors of the encoder asked for."""

    def __init__(self, cd: CrossDomainData, split: NewItemSplit, cfg: dict[str, Any], seed: int,
                 vectors: dict[str, torch.Tensor]) -> None:
        self.cd, self.split, self.cfg, self.seed, self.vectors = cd, split, cfg, seed, vectors
        items = split.data.items
        self.rows = torch.as_tensor(cd.item_rows(split.target))  # target index -> item-table row
        self.history = user_histories(split.train, items, cd.users)  # both domains, item-table rows
        target = cd.target_train
        self.known = torch.as_tensor(np.bincount(target["i"], minlength=cd.n_target_items) > 0)
        self.has_target = np.bincount(target["u"], minlength=cd.n_users) > 0
        self.has_source = cd.has_source()
        self.has_history = np.array([len(h) > 0 for h in self.history])
        self.pop = popularity_scores(target["i"].to_numpy(), cd.n_target_items)
        genres = items["genres"].to_numpy()[self.rows.numpy()] if "genres" in items.columns else None
        self.genre_pop = None if genres is None else GenrePopularity([list(g) for g in genres], target["i"].to_numpy())
        self.prior = self.genre_pop or RandomScores(cd.n_target_items, seed)  # for users a model cannot represent
        evaluated = np.concatenate([cd.val_users, cd.test_users])
        self.evaluated = evaluated
        self._mfs: dict[str, MF] = {}

    # ------------------------------------------------------------------ pieces

    def mf(self, domain: str) -> MF:
        if domain not in self._mfs:
            frame = self.cd.source_train if domain == self.split.source else self.cd.target_train
            n_items = self.cd.n_source_items if domain == self.split.source else self.cd.n_target_items
            model = train_mf(frame, self.cd.n_users, n_items, "ranking", self.cfg["mf"], self.seed, None)
            if domain == self.split.target:  # a new item's factors never trained: zero, not the random start
                with torch.no_grad():
                    model.item_emb.weight[~self.known] = 0.0
                    model.item_bias.weight[~self.known] = 0.0
            self._mfs[domain] = model
        return self._mfs[domain]

    def validator(self, wrap: Callable[[Any], Any]) -> Callable[[Any], dict[str, float]]:
        """validate(model): the monitored metric of the validation users, averaged over the cells of the 2x2."""
        metric = self.cfg["evaluate"]["monitor"]
        k = int(metric.split("@")[1])

        def validate(model: Any) -> dict[str, float]:
            scorer = wrap(model)
            means = [float(np.mean(out[metric])) for cell in CELLS[:4]
                     if (out := evaluate_cell(scorer.score_all, self.cd, self.split, "val", cell, [k],
                                              int(self.cfg["evaluate"]["batch_size"]))) is not None]
            return {"val": float(np.mean(means))}

        return validate

    def fit(self, model: Any, batches: Any, section: dict[str, Any], wrap: Callable[[Any], Any]) -> Any:
        set_seed(self.seed)
        config = TrainConfig(epochs=int(section["epochs"]), optimizer="adam", lr=float(section["lr"]),
                             weight_decay=float(section.get("weight_decay", 0.0)), monitor="val", mode="max",
                             patience=int(section["patience"]), seed=self.seed)
        fit(model, batches, config, self.validator(wrap))
        return model.cpu()

    def lm_bridge(self, vectors: torch.Tensor) -> LMBridge:
        lm, cd = self.cfg["lm"], self.cd
        source_rows = torch.as_tensor(cd.item_rows(self.split.source))
        src_hist, src_mask = cd.source_histories(int(lm["max_history"]))
        source_lists = [row[m].numpy() for row, m in zip(*cd.source_histories(None))]
        pooled = {} if lm["pooling"] == "mean" else {"pooling": "attention", "source_text": vectors[source_rows],
                                                      "history": src_hist, "history_mask": src_mask}
        return LMBridge(vectors[self.rows], mean_text(vectors[source_rows], source_lists),
                        dim=int(lm["dim"]), hidden=int(lm["hidden"]), adaptor=lm["adaptor"], dropout=float(lm["dropout"]),
                        item_bias=True, item_known=self.known, loss="softmax", **pooled)

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

    def _served(self, model: Any, serves: np.ndarray) -> tuple[Scorer, int]:
        return Scorer(model, serves, self.prior), int((~serves[self.evaluated]).sum())

    def _build(self, name: str, vectors: torch.Tensor | None) -> Built:
        cd, cfg = self.cd, self.cfg
        if name == "random":
            return Built(RandomScores(cd.n_target_items, self.seed), True, 0.0)
        if name == "popularity":
            return Built(Popularity(self.pop), False, 0.0)
        if name == "genre_popularity":
            if self.genre_pop is None:
                raise ValueError(f"{self.split.data.name}: genre_popularity needs a 'genres' column in the item table; "
                                 "use random for data without genres")
            return Built(self.genre_pop, True, 0.0)
        if name == "mf":
            mf = self.mf(self.split.target)
            return Built(Scorer(mf, self.has_target, MeanUser(mf, np.flatnonzero(self.has_target))), False, 0.0)
        if name == "content_knn":
            knn = ContentKNN(vectors, self.history, candidates=self.rows.numpy(), k=cfg["knn"]["k"],
                             max_history=cfg["knn"]["max_history"])
            return Built(*_pair(self._served(knn, knn.has_history)))
        if name == "two_tower":
            recent = [h[-int(cfg["tuning"]["max_history"]):] for h in self.history]
            model = TextOnly(vectors, mean_text(vectors, recent), candidates=self.rows.numpy())
            return Built(*_pair(self._served(model, self.has_history)))
        if name == "dropoutnet":
            d = cfg["dropoutnet"]
            model = DropoutNet(vectors[self.rows], self.known, mean_text(vectors, self.history),
                               torch.as_tensor(self.has_target), dim=int(d["dim"]), hidden=int(d["hidden"]),
                               item_dropout=float(d["item_dropout"]), user_dropout=float(d["user_dropout"]),
                               dropout=float(d["dropout"]))
            target = cd.target_train
            batches = softmax_batches(target["u"].to_numpy(), target["i"].to_numpy(), cd.n_target_items,
                                      int(d["batch_size"]))
            wrap = lambda m: Scorer(m, self.has_history, self.prior)  # noqa: E731
            return Built(*_pair(self._served(self.fit(model, batches, d, wrap), self.has_history)))
        if name in ("lm_bridge", "ptupcdr_lm"):
            section = cfg["lm"] if name == "lm_bridge" else cfg["ptupcdr"]
            model = self.lm_bridge(vectors)
            if name == "ptupcdr_lm":
                items, mask = cd.source_histories(int(cfg["ptupcdr"]["max_history"]))
                ptu = PTUPCDR(self.mf(self.split.source), self.mf(self.split.target), items, mask,
                              hidden=int(cfg["ptupcdr"]["hidden"]), loss="softmax")
                model = PTUPCDRText(ptu, model)
            wrap = lambda m: Scorer(m, self.has_source, self.prior)  # noqa: E731
            return Built(*_pair(self._served(self.fit(model, self.bridge_batches(section), section, wrap),
                                             self.has_source)))
        raise ValueError(f"unknown model {name!r}; valid choices: {', '.join(MODELS)}")


def _pair(served: tuple[Scorer, int]) -> tuple[Scorer, bool, float, int]:
    return served[0], True, 0.0, served[1]


__all__ = ["CELLS", "MODELS", "TEXT_MODELS", "Built", "NewItemBench", "cell_data", "evaluate_cell"]
