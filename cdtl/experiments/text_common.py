"""What the new-item and new-domain kinds share: item vectors (frozen or tuned), histories over both domains, and the baselines a new item allows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.data.ids import IdMap
from cdtl.data.newitems import check_item_texts
from cdtl.models.tuned_encoder import TunedEncoder, tune_item_encoder

#: how a text model reads items: the pretrained language model as it is, or its item tower tuned on training histories
ENCODERS = ("frozen", "tuned")
#: the language model and its text length (``model: null`` is the packaged all-MiniLM-L6-v2)
TEXT = {"model": None, "max_length": 64, "encode_batch_size": 64}
#: fine-tuning of the item tower (``cdtl.models.tuned_encoder``); max_users: a seeded sample of training users
TUNING = {"epochs": 1, "batch_size": 64, "max_history": 20, "freeze_layers": 2, "max_users": None,
          "lr": 2.0e-5, "weight_decay": 0.01, "temperature": 0.05}


def check_choices(cfg: dict[str, Any], choices: dict[str, Any]) -> None:
    """Refuse a list of names (``models``, ``encoders``) that is empty or names something unknown, listing the valid ones."""
    from cdtl.experiment import ConfigError

    for key, valid in choices.items():
        bad = [m for m in cfg[key] if m not in valid]
        if bad or not cfg[key]:
            raise ConfigError(f"unknown {key} {bad or '(none given)'}; valid choices: {', '.join(valid)}")


def frozen_vectors(text: dict[str, Any], items: pd.DataFrame) -> torch.Tensor:
    """The pretrained language model's vector of every row of ``items`` (cached on disk)."""
    from cdtl.encoders.catalogue import encode_items

    check_item_texts(items, "item table")
    return encode_items(items, model=text["model"], max_length=int(text["max_length"]),
                        batch_size=int(text["encode_batch_size"]))


def tuned_vectors(text: dict[str, Any], tuning: dict[str, Any], items: pd.DataFrame, train: pd.DataFrame, seed: int,
                  validate: Any = None) -> TunedEncoder:
    """The item tower fine-tuned on ``train`` (training rows of both domains), then every row of ``items`` encoded."""
    return tune_item_encoder(items, train, model=text["model"], max_length=int(text["max_length"]),
                             encode_batch_size=int(text["encode_batch_size"]), seed=seed, validate=validate,
                             **{k: tuning[k] for k in TUNING})


def user_histories(frame: pd.DataFrame, items: pd.DataFrame, users: IdMap) -> list[np.ndarray]:
    """Each user's (by ``users`` index) interactions of ``frame`` as rows of ``items``, oldest first."""
    rows = pd.Index(items["item"]).get_indexer(frame["item"])
    if (rows < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} interactions name items missing from the item table")
    u = users.encode(frame["user"])
    time = frame["timestamp"].to_numpy() if "timestamp" in frame.columns else np.zeros(len(frame))
    order = np.lexsort((time, u))
    u, rows = u[order], rows[order]
    starts = np.searchsorted(u, np.arange(len(users) + 1))
    return [rows[starts[k]:starts[k + 1]] for k in range(len(users))]


def mean_text(vectors: torch.Tensor, histories: list[np.ndarray]) -> torch.Tensor:
    """(n_users, D): each history's mean vector (zeros for an empty one)."""
    from cdtl.encoders.users import mean_pool

    return mean_pool(vectors, histories, empty="zeros")


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
        counts = np.bincount(np.asarray(train_items, dtype=np.int64), minlength=len(genres)).astype(np.float64)
        total: dict[str, float] = {}
        size: dict[str, int] = {}
        for gs, c in zip(genres, counts):
            for g in gs:
                total[g] = total.get(g, 0.0) + c
                size[g] = size.get(g, 0) + 1
        per_genre = {g: total[g] / size[g] for g in total}
        self.scores = torch.tensor([float(np.mean([per_genre[g] for g in gs])) if len(gs) else 0.0 for gs in genres],
                                   dtype=torch.float32)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.scores.expand(len(users), -1)


__all__ = ["ENCODERS", "check_choices", "GenrePopularity", "RandomScores", "TEXT", "TUNING", "frozen_vectors", "mean_text",
           "tuned_vectors", "user_histories"]
