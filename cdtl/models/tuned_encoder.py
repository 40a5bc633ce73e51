"""Sampling-bias-corrected two-tower fine-tuning (Yi et al., RecSys 2019) of the language model on both domains'
training interactions; the tuned item tower is then frozen to encode new items and new domains.

Chapter 03's ``TwoTower`` (item tower: the language model, mean-pooled; user tower: the
mean of the user's history items) is trained on every user's training history **across
both domains**, in time order: each example is a user's next item after their history, and
the loss is the in-batch softmax with the log-Q correction,

    loss = - log  exp(u . v_pos / t - log q_pos) / sum_j exp(u . v_j / t - log q_j)

over the batch's distinct next items j (q_j: item j's share of the training interactions).
Only training interactions are read, so no new item and no held-out interaction shapes the
encoder. After training the item tower is **frozen** and encodes every item of the table,
new ones included: those vectors replace the pretrained ones in any text model (content
k-NN, DropoutNet, the LM bridge). The vectors are cached on disk, keyed by the base model,
the training interactions and every setting, so a second run is a lookup.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.data.newitems import check_item_texts
from cdtl.encoders.cache import EmbeddingCache, text_key
from cdtl.env import cache_dir
from cdtl.io import CorruptFileError, atomic_write, read_json
from cdtl.models.text_only import history_rows
from cdtl.models.two_tower import LR, WEIGHT_DECAY, TwoTower, two_tower_batches
from cdtl.train import TrainConfig, fit, set_seed

TUNING_FILE = "tuning.json"  # training time and history, next to the cached vectors


@dataclass
class TunedEncoder:
    """The tuned vectors of every item row (normalised), and what tuning cost."""

    vectors: torch.Tensor
    train_seconds: float  # fine-tuning, measured when it ran (read back from the cache otherwise)
    encode_seconds: float  # encoding the whole item table with the tuned tower
    from_cache: bool
    users: int  # users whose histories trained it
    history: list[dict[str, float]] = field(default_factory=list)


def _fingerprint(train: pd.DataFrame, texts: list[str], settings: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    frame = train[["user", "item"]].astype(str).sort_values(["user", "item"], kind="stable")
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update("\n".join(texts).encode("utf-8"))
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode("utf-8"))
    return digest.hexdigest()


def tune_item_encoder(
    items: pd.DataFrame,
    train: pd.DataFrame,
    *,
    model: str | None = None,
    epochs: int = 1,
    batch_size: int = 64,
    max_history: int = 20,
    freeze_layers: int = 2,
    max_length: int = 64,
    max_users: int | None = None,
    lr: float = LR,
    weight_decay: float = WEIGHT_DECAY,
    temperature: float = 0.05,
    encode_batch_size: int = 256,
    seed: int = 0,
    validate: Callable[[torch.Tensor], float] | None = None,
    cache: bool = True,
) -> TunedEncoder:
    """Fine-tune ``model`` (None: the packaged MiniLM) on ``train`` and encode every row of ``items``.

    ``train``: interactions (user, item[, timestamp]) of both domains, training rows only.
    ``max_users`` trains on a seeded sample of users (None: all). ``validate(vectors)``, given,
    scores item vectors on validation users; it is called after every epoch and the epoch with
    the best score is kept (selection on validation only). Returns the vectors, row r for
    ``items`` row r, with the time it took.
    """
    check_item_texts(items, "tune_item_encoder: items")
    texts = items["text"].astype(str).tolist()
    users, rows = history_rows(train, items)
    if max_users is not None and len(users) > int(max_users):
        keep = np.sort(np.random.default_rng(seed).permutation(len(users))[: int(max_users)])
        rows = [rows[k] for k in keep]
    settings = {"model": model or "packaged all-MiniLM-L6-v2", "epochs": epochs, "batch_size": batch_size,
                "max_history": max_history, "freeze_layers": freeze_layers, "max_length": max_length,
                "max_users": max_users, "lr": lr, "weight_decay": weight_decay, "temperature": temperature,
                "seed": seed, "validated": validate is not None, "logq": True, "targets": "random"}
    identity = {"tuned_encoder": 1, "fingerprint": _fingerprint(train, texts, settings), **settings}
    keys = [text_key(t) for t in texts]
    store = EmbeddingCache(cache_dir() / "embeddings") if cache else None
    cached = _cached(store, identity, keys) if store is not None else None
    if cached is not None:
        return cached
    set_seed(seed)
    tower = TwoTower(model, freeze_layers=freeze_layers, max_length=max_length, max_history=max_history,
                     user_pooling="mean", adaptor=None, temperature=temperature)
    config = TrainConfig(epochs=int(epochs), lr=float(lr), weight_decay=float(weight_decay), seed=seed,
                         monitor="val" if validate is not None else None, patience=1)
    tuned = _train_and_encode(tower, texts, rows, config, batch_size, encode_batch_size, validate)
    if store is not None:
        store.put(identity, keys, tuned.vectors)
        atomic_write(store.directory(identity) / TUNING_FILE,
                     json.dumps({"train_seconds": tuned.train_seconds, "users": tuned.users, "history": tuned.history}))
    return tuned


def _cached(store: EmbeddingCache, identity: dict[str, Any], keys: list[str]) -> TunedEncoder | None:
    """The vectors of an earlier identical tuning, from the embedding cache; None when there is none (or it is damaged)."""
    meta = store.directory(identity) / TUNING_FILE
    if not meta.exists() or store.missing(identity, keys):
        return None
    try:
        info = read_json(meta, what="the tuned encoder's record")
    except CorruptFileError as err:  # a damaged record: tune again and write it anew
        warnings.warn(f"{err}; tuning the encoder again", stacklevel=3)
        return None
    tick = time.perf_counter()
    vectors = store.get(identity, keys)
    return TunedEncoder(vectors, float(info["train_seconds"]), time.perf_counter() - tick, True,
                        int(info["users"]), info["history"])


def _train_and_encode(tower: TwoTower, texts: list[str], rows: list[np.ndarray], config: TrainConfig, batch_size: int,
                      encode_batch_size: int, validate: Callable[[torch.Tensor], float] | None) -> TunedEncoder:
    """Train the two-tower model contrastively (best validation epoch kept), then encode every item with it."""
    batches = two_tower_batches(tower, texts, rows, batch_size, targets="random", logq=True)
    check = None
    if validate is not None:
        check = lambda m: {"val": float(validate(m.encode_items(texts, encode_batch_size)))}  # noqa: E731
    tick = time.perf_counter()
    result = fit(tower, batches, config, check)
    train_seconds = time.perf_counter() - tick
    tick = time.perf_counter()
    vectors = tower.encode_items(texts, encode_batch_size)
    return TunedEncoder(vectors, train_seconds, time.perf_counter() - tick, False, len(rows), result.history)


__all__ = ["TunedEncoder", "tune_item_encoder"]
