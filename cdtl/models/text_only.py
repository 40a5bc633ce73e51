"""The baseline with nothing trained: items and pooled user histories as text vectors, ranked by cosine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from cdtl.data.coldstart import ColdStartSplit
from cdtl.data.ids import interaction_matrix
from cdtl.encoders.users import mean_pool, profile_text, recency_pool
from cdtl.encoders.whitening import PCAWhitening
from cdtl.evaluate import evaluate_ranking, group_items

POOLINGS = ("mean", "recency", "profile")


class TextOnly:
    """The text-only recommender: ``score_all(users)`` is the cosine of each user's vector with each candidate item's.

    An item is its language-model vector; a user is a vector in the same space (pooled
    from their history, see ``from_histories``, or an encoded profile text), so a user
    with history in one domain only can be ranked the items of another.

    ``item_text`` (n_items, d) is the whole catalogue, ``user_emb`` (n_users, d) the users.
    ``candidates`` (item rows, default all) are the items to rank: column k of the scores
    is item ``candidates[k]``. With ``whiten=True`` a ``PCAWhitening`` keeping
    ``whiten_dim`` components (None: all) is fitted on the catalogue and applied to items
    and users before the cosine.
    """

    def __init__(
        self,
        item_text: Tensor,
        user_emb: Tensor,
        *,
        candidates: Sequence[int] | np.ndarray | None = None,
        whiten: bool = False,
        whiten_dim: int | None = None,
    ) -> None:
        if item_text.dim() != 2 or user_emb.dim() != 2 or item_text.shape[1] != user_emb.shape[1]:
            raise ValueError("item_text (n_items, d) and user_emb (n_users, d) must share d, got shapes "
                             f"{tuple(item_text.shape)} and {tuple(user_emb.shape)}")
        self.whitening = PCAWhitening(whiten_dim).fit(item_text) if whiten else None
        all_rows = np.arange(len(item_text)) if candidates is None else np.asarray(candidates)
        self.candidates = torch.as_tensor(all_rows, dtype=torch.long)
        self.item_vectors = self._space(item_text[self.candidates])
        self.user_vectors = self._space(user_emb)

    @classmethod
    def from_histories(
        cls, item_text: Tensor, histories: Any, *, pooling: str = "mean", half_life: float = 10.0, **options: Any
    ) -> TextOnly:
        """Users pooled from ``histories``: one array of item rows per user, oldest first (see ``cdtl.encoders.users``).

        ``pooling="mean"`` weighs every item alike; ``"recency"`` halves the weight every
        ``half_life`` items back. Pooling before or after whitening gives the same user
        (both are weighted means, whitening is affine). ``options`` go to ``TextOnly``.
        """
        if pooling == "mean":
            users = mean_pool(item_text, histories)
        elif pooling == "recency":
            users = recency_pool(item_text, histories, half_life)
        else:
            raise ValueError(f"from_histories pools with 'mean' or 'recency', got {pooling!r} "
                             "(for a profile text, encode it and pass the vectors as user_emb)")
        return cls(item_text, users, **options)

    def _space(self, x: Tensor) -> Tensor:
        x = x.float()
        if self.whitening is not None:
            x = self.whitening.transform(x)
        return F.normalize(x, dim=-1)

    def score_all(self, users: Tensor) -> Tensor:
        """(len(users), n_candidates) cosine scores of the users with these indices."""
        return self.user_vectors[torch.as_tensor(users, dtype=torch.long)] @ self.item_vectors.T


def history_rows(interactions: pd.DataFrame, items: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    """(sorted user ids, each one's rows of ``items`` in time order): histories for ``TextOnly.from_histories``."""
    rows = pd.Index(items["item"]).get_indexer(interactions["item"])
    if (rows < 0).any():
        first = interactions["item"].iloc[int(np.flatnonzero(rows < 0)[0])]
        raise ValueError(f"{int((rows < 0).sum())} interactions name items missing from the item table, e.g. {first!r}")
    time = interactions["timestamp"].to_numpy() if "timestamp" in interactions else np.zeros(len(rows))
    frame = pd.DataFrame({"user": interactions["user"].to_numpy(), "row": rows, "time": time})
    frame = frame.sort_values(["user", "time"], kind="stable")
    users, starts = np.unique(frame["user"].to_numpy(), return_index=True)
    return users, np.split(frame["row"].to_numpy(np.int64), starts[1:])


def indexed_history_rows(interactions: pd.DataFrame, items: pd.DataFrame, users: Any) -> list[np.ndarray]:
    """``history_rows`` by user index: entry k holds the rows of ``users``'s k-th id (an ``IdMap``), empty without any."""
    known, rows = history_rows(interactions, items)
    out = [np.zeros(0, dtype=np.int64)] * len(users)
    for k, r in zip(users.encode(known), rows):
        out[k] = r
    return out


def _evaluated_users(items: pd.DataFrame, history: pd.DataFrame, held_out: pd.DataFrame) -> tuple[np.ndarray, list]:
    """(the users of ``held_out``, sorted; their history rows of ``items``): every one of them needs a history."""
    users = np.unique(held_out["user"].to_numpy())
    if len(users) == 0:
        raise ValueError("held_out is empty: no user to evaluate")
    known, histories = history_rows(history[history["user"].isin(users)], items)
    if len(known) < len(users):
        lacking = np.setdiff1d(users, known)
        raise ValueError(f"{len(lacking)} of {len(users)} users to evaluate have an empty history, e.g. "
                         f"{lacking[:3].tolist()}: a text-only user is built from their history, so drop them first")
    return users, histories


def _candidate_columns(items: pd.DataFrame, held_out: pd.DataFrame,
                       candidates: Sequence[str] | pd.Series | None) -> tuple[pd.Index, np.ndarray]:
    """(candidate ids as the score columns, their rows of ``items``); every held-out item must be a candidate."""
    columns = pd.Index(items["item"] if candidates is None else candidates)
    candidate_rows = pd.Index(items["item"]).get_indexer(columns)
    if (candidate_rows < 0).any():
        raise ValueError(f"{int((candidate_rows < 0).sum())} candidates are not in the item table")
    if not held_out["item"].isin(columns).all():
        raise ValueError(f"{int((~held_out['item'].isin(columns)).sum())} held-out interactions are on items "
                         "that are not candidates")
    return columns, candidate_rows


def evaluate_text_only(
    item_text: Tensor,
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

    ``item_text`` row r embeds ``items`` row r. Each user of ``held_out`` is built from
    their rows of ``history``: ``pooling`` "mean" or "recency", or "profile" (their
    ``profile_items`` most recent titles as one text, encoded by ``encoder``). Every item
    of ``candidates`` (ids; default all of ``items``) is ranked, except the user's items
    in ``exclude``, against their ``held_out`` items. Returns ``evaluate_ranking``'s
    arrays plus ``users`` (ids, sorted). ``options`` (``whiten``, ``whiten_dim``) go to ``TextOnly``.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if len(item_text) != len(items):
        raise ValueError(f"item_text has {len(item_text)} rows but items has {len(items)}: one vector per item row")
    users, histories = _evaluated_users(items, history, held_out)
    columns, candidate_rows = _candidate_columns(items, held_out, candidates)
    if pooling == "profile":
        if encoder is None:
            raise ValueError("pooling='profile' encodes each user's profile text: pass encoder=TextEncoder(...)")
        titles = items["title"].to_numpy()
        user_emb = encoder.encode([profile_text(list(titles[h]), max_items=profile_items) for h in histories])
        model = TextOnly(item_text, user_emb, candidates=candidate_rows, **options)
    else:
        model = TextOnly.from_histories(item_text, histories, pooling=pooling, half_life=half_life,
                                        candidates=candidate_rows, **options)

    user_index = pd.Index(users)
    who, relevant = group_items(user_index.get_indexer(held_out["user"]), columns.get_indexer(held_out["item"]))
    seen = None
    if exclude is not None:
        part = exclude[exclude["user"].isin(users) & exclude["item"].isin(columns)]
        seen = interaction_matrix(user_index.get_indexer(part["user"]), columns.get_indexer(part["item"]),
                                  len(users), len(columns))
    return {"users": users[who], **evaluate_ranking(model.score_all, who, relevant, seen, ks, batch_size)}


def evaluate_cold_start(
    split: ColdStartSplit, item_text: Tensor, *, users: str = "test", **options: Any
) -> dict[str, np.ndarray]:
    """Per-user metrics of the split's cold ``users`` ("test" or "val"): SOURCE history pooled, TARGET items ranked.

    ``item_text`` row r embeds ``split.data.items`` row r. Cold users have no target
    interaction in training, so nothing is excluded: the users, candidates, relevant
    items and exclusions are those ``cdtl run`` scores MF on under the ``cold_start``
    protocol. ``options`` go to ``evaluate_text_only`` (pooling, whitening, ks, ...).
    """
    if users not in ("test", "val"):
        raise ValueError(f"users must be 'test' or 'val', got {users!r}")
    held, who = (split.test, split.test_users) if users == "test" else (split.val, split.val_users)
    items = split.data.items
    targets = items.loc[items["domain"] == split.target, "item"]
    return evaluate_text_only(item_text, items, split.source_history(who), held, candidates=targets, **options)


__all__ = ["POOLINGS", "TextOnly", "evaluate_cold_start", "evaluate_text_only", "history_rows", "indexed_history_rows"]
