"""A recommender with no trained parameter at all: items by their text embedding, users by their history's, ranked by cosine.

It is the floor every text-based transfer model has to clear. An item is the language
model's vector of its text; a user is the pool (``mean`` or ``recency``) of the vectors
of the items in their history, or the vector of their ``profile`` text; every candidate
item is scored by the cosine between the two, optionally after ``PCAWhitening`` fitted
on the catalogue. Because a user is built from *any* items, a user with history in the
source domain only can be ranked target items: nothing about the target was learned.

``TextOnly.score_all`` plugs into ``cdtl.evaluate.evaluate_ranking``;
``evaluate_cold_start`` scores the cold-start users of a ``ColdStartSplit`` and
``evaluate_text_only`` any (history, held-out) pair of interaction tables, e.g. the
per-user protocol of chapter 02 for warm users. Both return per-user metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from cdtl.data.coldstart import ColdStartSplit
from cdtl.encoders.users import mean_pool, profile_text, recency_pool
from cdtl.encoders.whitening import PCAWhitening
from cdtl.evaluate import evaluate_ranking, group_items

POOLINGS = ("mean", "recency", "profile")


class TextOnly:
    """``score_all(users)``: the cosine between each user's vector and each candidate item's, (len(users), n_candidates).

    ``item_emb`` (n_items, d) is the catalogue, ``user_emb`` (n_users, d) the users in
    the same space. ``candidates`` (item rows, default all) are the items to rank: column
    k of the scores is item ``candidates[k]``. With ``whiten=True`` a ``PCAWhitening``
    keeping ``whiten_dim`` components (None: all) is fitted on the whole catalogue and
    applied to items and users before the cosine.
    """

    def __init__(
        self,
        item_emb: Tensor,
        user_emb: Tensor,
        *,
        candidates: Sequence[int] | np.ndarray | None = None,
        whiten: bool = False,
        whiten_dim: int | None = None,
    ) -> None:
        if item_emb.dim() != 2 or user_emb.dim() != 2 or item_emb.shape[1] != user_emb.shape[1]:
            raise ValueError(f"item_emb (n_items, d) and user_emb (n_users, d) must share d, "
                             f"got shapes {tuple(item_emb.shape)} and {tuple(user_emb.shape)}")
        self.whitening = PCAWhitening(whiten_dim).fit(item_emb) if whiten else None
        rows = torch.arange(len(item_emb)) if candidates is None else torch.as_tensor(np.asarray(candidates), dtype=torch.long)
        self.candidates = rows
        self.item_vectors = self._space(item_emb[rows])
        self.user_vectors = self._space(user_emb)

    @classmethod
    def from_histories(
        cls,
        item_emb: Tensor,
        histories: Any,
        *,
        pooling: str = "mean",
        half_life: float = 10.0,
        **options: Any,
    ) -> TextOnly:
        """Users pooled from ``histories`` (one array of item rows per user, oldest first; see ``cdtl.encoders.users``).

        ``pooling="mean"`` weighs every item alike, ``"recency"`` halves the weight every
        ``half_life`` items back. Pooling before or after whitening gives the same user
        (both are weighted means, whitening is affine). ``options`` go to ``TextOnly``.
        """
        if pooling == "mean":
            users = mean_pool(item_emb, histories)
        elif pooling == "recency":
            users = recency_pool(item_emb, histories, half_life)
        else:
            raise ValueError(f"from_histories pools with 'mean' or 'recency', got {pooling!r} "
                             "(for 'profile', encode the profile texts and pass them as user_emb)")
        return cls(item_emb, users, **options)

    def _space(self, x: Tensor) -> Tensor:
        x = x.float()
        if self.whitening is not None:
            x = self.whitening.transform(x)
        return F.normalize(x, dim=-1)

    def score_all(self, users: Tensor) -> Tensor:
        """(len(users), n_candidates) cosine scores of the users with these indices."""
        return self.user_vectors[torch.as_tensor(users, dtype=torch.long)] @ self.item_vectors.T


def history_rows(interactions: pd.DataFrame, items: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    """(sorted user ids, each user's item rows of ``items`` in time order): histories for ``TextOnly.from_histories``."""
    rows = pd.Index(items["item"]).get_indexer(interactions["item"])
    if (rows < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} interactions name items missing from the item table, "
                         f"e.g. {interactions['item'].iloc[int(np.flatnonzero(rows < 0)[0])]!r}")
    frame = pd.DataFrame({"user": interactions["user"].to_numpy(), "row": rows,
                          "t": interactions["timestamp"].to_numpy() if "timestamp" in interactions else 0})
    frame = frame.sort_values(["user", "t"], kind="stable")
    users, starts = np.unique(frame["user"].to_numpy(), return_index=True)
    return users, np.split(frame["row"].to_numpy(np.int64), starts[1:])


def evaluate_text_only(
    item_emb: Tensor,
    items: pd.DataFrame,
    history: pd.DataFrame,
    held_out: pd.DataFrame,
    *,
    candidates: Sequence[str] | pd.Series | None = None,
    exclude: pd.DataFrame | None = None,
    pooling: str = "mean",
    half_life: float = 10.0,
    encoder: Any = None,
    profile_items: int = 20,
    ks: Sequence[int] = (10,),
    batch_size: int = 2048,
    **options: Any,
) -> dict[str, np.ndarray]:
    """Per-user ranking metrics of the text-only recommender for the users of ``held_out``.

    ``item_emb`` row r embeds ``items`` row r. Each user of ``held_out`` is built from
    their rows of ``history`` (``pooling`` "mean" or "recency", or "profile": their
    ``profile_items`` most recent titles written as one text and encoded by ``encoder``);
    every item of ``candidates`` (ids; default: all of ``items``) is ranked, except the
    user's items in ``exclude``, and scored against the user's ``held_out`` items.
    Returns ``evaluate_ranking``'s arrays plus ``users`` (their ids, sorted).
    ``options`` (``whiten``, ``whiten_dim``) go to ``TextOnly``.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if len(item_emb) != len(items):
        raise ValueError(f"item_emb has {len(item_emb)} rows but items has {len(items)}: one embedding per item row")
    users = np.unique(held_out["user"].to_numpy())
    if len(users) == 0:
        raise ValueError("held_out is empty: no user to evaluate")
    known, histories = history_rows(history[history["user"].isin(users)], items)
    if len(known) < len(users):
        lacking = np.setdiff1d(users, known)
        raise ValueError(f"{len(lacking)} of {len(users)} users to evaluate have an empty history, "
                         f"e.g. {lacking[:3].tolist()}: a text-only user is built from their history, so drop them first")
    catalogue = pd.Index(items["item"])
    cand_ids = items["item"] if candidates is None else pd.Series(candidates)
    cand_rows = catalogue.get_indexer(cand_ids)
    if (cand_rows < 0).any():
        raise ValueError(f"{int((cand_rows < 0).sum())} candidates are not in the item table")
    column = pd.Index(cand_ids)  # item id -> its column in the scores

    if pooling == "profile":
        if encoder is None:
            raise ValueError("pooling='profile' encodes each user's profile text: pass encoder=TextEncoder(...)")
        titles = items["title"].to_numpy()
        texts = [profile_text(list(titles[h]), max_items=profile_items) for h in histories]
        model = TextOnly(item_emb, encoder.encode(texts), candidates=cand_rows, **options)
    else:
        model = TextOnly.from_histories(item_emb, histories, pooling=pooling, half_life=half_life,
                                        candidates=cand_rows, **options)

    user_index = pd.Index(users)
    held = held_out[held_out["item"].isin(column)]
    if len(held) < len(held_out):
        raise ValueError(f"{len(held_out) - len(held)} held-out interactions are on items that are not candidates")
    who, relevant = group_items(user_index.get_indexer(held["user"]), column.get_indexer(held["item"]))
    exclude_csr = None
    if exclude is not None:
        import scipy.sparse

        part = exclude[exclude["user"].isin(users) & exclude["item"].isin(column)]
        exclude_csr = scipy.sparse.csr_matrix(
            (np.ones(len(part), dtype=np.float32), (user_index.get_indexer(part["user"]), column.get_indexer(part["item"]))),
            shape=(len(users), len(column)))
    metrics = evaluate_ranking(model.score_all, who, relevant, exclude_csr, ks, batch_size)
    return {"users": users[who], **metrics}


def evaluate_cold_start(
    split: ColdStartSplit, item_emb: Tensor, *, users: str = "test", **options: Any
) -> dict[str, np.ndarray]:
    """Per-user metrics for the split's cold ``users`` ("test" or "val"): their SOURCE history pooled, all TARGET items ranked.

    ``item_emb`` row r embeds ``split.data.items`` row r. Cold users have no target
    interaction in training, so nothing is excluded: the same candidates, relevant items
    and exclusions as ``cdtl run`` uses for the ``cold_start`` protocol. ``options`` go to
    ``evaluate_text_only`` (pooling, whitening, ks, ...).
    """
    if users not in ("test", "val"):
        raise ValueError(f"users must be 'test' or 'val', got {users!r}")
    held, who = (split.test, split.test_users) if users == "test" else (split.val, split.val_users)
    items = split.data.items
    targets = items.loc[items["domain"] == split.target, "item"]
    return evaluate_text_only(item_emb, items, split.source_history(who), held, candidates=targets, **options)


__all__ = ["POOLINGS", "TextOnly", "evaluate_cold_start", "evaluate_text_only", "history_rows"]
