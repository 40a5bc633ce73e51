"""A cold-start split encoded for cross-domain models: one user index shared by both domains, one item index per domain."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from cdtl.data.coldstart import ColdStartSplit
from cdtl.data.histories import pad_histories
from cdtl.data.ids import IdMap, interaction_matrix


@dataclass
class CrossDomainData:
    """Integer-indexed tables of a ``ColdStartSplit``, ready for embedding tables.

    - ``users`` indexes every user of either domain (so a user's row is the same in the
      source and the target model); ``source_items`` and ``target_items`` index each
      domain's catalogue (every item of ``data.items``, rated or not).
    - ``source_train`` / ``target_train``: the training interactions of each domain,
      with integer columns ``u`` and ``i`` next to the original ones (no target
      interaction of a cold user is in ``target_train``).
    - ``val`` / ``test``: the held-out target interactions of the validation and the
      test cold users, indexed the same way.
    - ``warm``, ``val_users``, ``test_users``: user indices of the warm overlapping users
      (their target history is in training: they teach the bridge) and of the cold ones.
    """

    split: ColdStartSplit
    users: IdMap
    source_items: IdMap
    target_items: IdMap
    source_train: pd.DataFrame
    target_train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    warm: np.ndarray
    val_users: np.ndarray
    test_users: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_source_items(self) -> int:
        return len(self.source_items)

    @property
    def n_target_items(self) -> int:
        return len(self.target_items)

    @property
    def has_ratings(self) -> bool:
        return bool(self.split.data.has_ratings)

    def held_out(self, which: str) -> pd.DataFrame:
        """The held-out target interactions of the ``"val"`` or ``"test"`` cold users."""
        if which not in ("val", "test"):
            raise ValueError(f"which must be 'val' or 'test', got {which!r}")
        return self.val if which == "val" else self.test

    def item_rows(self, domain: str) -> np.ndarray:
        """Rows of ``split.data.items`` for ``domain``'s catalogue, in item-index order (for text embeddings)."""
        items = self.split.data.items
        ids = self._items(domain).ids
        rows = pd.Index(items["item"]).get_indexer(ids)
        if (rows < 0).any():
            raise ValueError(f"{int((rows < 0).sum())} {domain} items are missing from the item table")
        return rows

    def _items(self, domain: str) -> IdMap:
        if domain == self.split.source:
            return self.source_items
        if domain == self.split.target:
            return self.target_items
        raise ValueError(f"domain must be {self.split.source!r} (source) or {self.split.target!r} (target), got {domain!r}")

    def source_histories(self, max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(items, mask), (n_users, L): each user's ``max_len`` most recent source items, oldest first.

        A user with no source interaction has an all-False row: models must give such a
        user the declared fallback (``has_source``), never a made-up vector.
        """
        frame = self.source_train
        order = np.lexsort((frame["timestamp"].to_numpy() if "timestamp" in frame else np.arange(len(frame)),
                            frame["u"].to_numpy()))
        u, i = frame["u"].to_numpy()[order], frame["i"].to_numpy()[order]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=self.n_users))])
        return pad_histories((indptr, i), max_len, n_items=self.n_source_items, empty="zeros")

    def has_source(self) -> np.ndarray:
        """(n_users,) bool: whether each user has any source-domain training interaction."""
        return np.bincount(self.source_train["u"].to_numpy(), minlength=self.n_users) > 0

    def train_matrix(self, domain: str) -> "scipy.sparse.csr_matrix":  # noqa: F821
        """The binary (n_users, n_items) training matrix of one domain."""
        frame = self.source_train if domain == self.split.source else self.target_train
        n_items = len(self._items(domain))
        return interaction_matrix(frame["u"].to_numpy(), frame["i"].to_numpy(), self.n_users, n_items)

    def summary(self) -> dict[str, int]:
        """Sizes of the encoded tables (JSON-ready)."""
        return {"users": self.n_users, "source_items": self.n_source_items, "target_items": self.n_target_items,
                "source_train": len(self.source_train), "target_train": len(self.target_train),
                "warm_users": len(self.warm), "val_users": len(self.val_users), "test_users": len(self.test_users),
                "val": len(self.val), "test": len(self.test)}


def encode_split(split: ColdStartSplit) -> CrossDomainData:
    """Index a cold-start split for the cross-domain models (see ``CrossDomainData``)."""
    data = split.data
    items = data.items
    users = IdMap.fit(data.interactions["user"])
    source_items = IdMap.fit(items.loc[items["domain"] == split.source, "item"])
    target_items = IdMap.fit(items.loc[items["domain"] == split.target, "item"])

    def index(frame: pd.DataFrame, item_map: IdMap) -> pd.DataFrame:
        frame = frame.reset_index(drop=True).copy()
        frame["u"] = users.encode(frame["user"])
        frame["i"] = item_map.encode(frame["item"])
        return frame

    return CrossDomainData(
        split=split,
        users=users,
        source_items=source_items,
        target_items=target_items,
        source_train=index(split.domain_train(split.source), source_items),
        target_train=index(split.domain_train(split.target), target_items),
        val=index(split.val, target_items),
        test=index(split.test, target_items),
        warm=users.encode(split.warm_users),
        val_users=users.encode(split.val_users),
        test_users=users.encode(split.test_users),
    )


__all__ = ["CrossDomainData", "encode_split"]
