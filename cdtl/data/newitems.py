"""The new-item protocol: hold some target items out of training entirely, so users (warm or cold) must rank items no
one has touched."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cdtl.data.coldstart import cold_start_split
from cdtl.data.protocols import per_user_split
from cdtl.data.tables import DataError, RecData

#: how the new items are chosen: the newest by first interaction, the newest by release year, or a seeded random share
ORDERS = ("first_interaction", "year", "random")
#: the shares of the target catalogue the course holds out as new items
RATIOS = (0.1, 0.2, 0.5)
USER_KINDS = ("warm", "cold")
ITEM_KINDS = ("old", "new")


def _target_interactions(data: RecData, target: str) -> pd.DataFrame:
    if target not in data.domains:
        raise DataError(f"{data.name}: unknown target domain {target!r}; domains are {data.domains}")
    part = data.interactions[data.interactions["domain"] == target]
    if part.empty:
        raise DataError(f"{data.name}: target domain {target!r} has no users (no interactions)")
    return part


def choose_new_items(data: RecData, target: str, ratio: float, by: str = "random", seed: int = 0) -> np.ndarray:
    """The sorted ids of the newest ``ratio`` of ``target``'s items that have interactions.

    ``by="first_interaction"`` orders items by their earliest interaction (needs timestamps),
    ``"year"`` by release year (needs a ``year`` column; ties broken by first interaction when
    there are timestamps, then by id; items of unknown year are never new), ``"random"`` by a
    seeded permutation. ``round(ratio * n)`` items are new; a ratio that leaves no new item or
    no training item fails, naming both counts.
    """
    if by not in ORDERS:
        raise ValueError(f"by must be one of {ORDERS}, got {by!r}")
    if not (isinstance(ratio, (int, float)) and 0.0 < ratio < 1.0):
        raise ValueError(f"new-item ratio must lie strictly between 0 and 1 (e.g. {RATIOS}), got {ratio!r}")
    inter = _target_interactions(data, target)
    has_time = "timestamp" in inter.columns
    first = inter.groupby("item")["timestamp"].min() if has_time else None
    items = np.sort(inter["item"].unique())
    n_new = int(round(ratio * len(items)))
    if n_new < 1:
        raise DataError(f"{data.name}: new-item ratio {ratio} of the {len(items)} {target!r} items with interactions "
                        "leaves no new item; raise the ratio")
    if n_new >= len(items):
        raise DataError(f"{data.name}: new-item ratio {ratio} makes all {len(items)} {target!r} items new and leaves "
                        "no training item; lower the ratio")
    if by == "random":
        order = items[np.random.default_rng(seed).permutation(len(items))]
        return np.sort(order[:n_new])
    frame = pd.DataFrame({"item": items})
    frame["first"] = first.reindex(items).to_numpy() if has_time else 0
    if by == "first_interaction":
        if not has_time:
            raise DataError(f"{data.name}: by='first_interaction' needs a 'timestamp' column in the interactions; "
                            "use by='random' (or 'year')")
        frame = frame.sort_values(["first", "item"], ascending=[False, True], kind="stable")
    else:
        if "year" not in data.items.columns:
            raise DataError(f"{data.name}: by='year' needs a 'year' column in the item table; use by='random'")
        frame["year"] = pd.to_numeric(data.items.set_index("item")["year"].reindex(items), errors="coerce").to_numpy()
        known = frame.dropna(subset=["year"])
        if int(round(ratio * len(items))) > len(known):
            raise DataError(f"{data.name}: only {len(known)} of {len(items)} {target!r} items have a year; "
                            f"too few for a new-item ratio of {ratio}")
        frame = known.sort_values(["year", "first", "item"], ascending=[False, False, True], kind="stable")
    return np.sort(frame["item"].to_numpy()[:n_new])


@dataclass
class NewItemSplit:
    """Warm and cold users, old and new items: the four cells of the 2x2 table, with nothing of a new item in training.

    ``train`` holds every source interaction and the warm users' target interactions on old
    items, less a held-out share of them; no interaction with a ``new_items`` item and no
    target interaction of a cold user is in it. ``val`` and ``test`` hold the held-out target
    interactions of the validation and test users, each row labelled ``user_kind`` (warm |
    cold) and ``item_kind`` (old | new). Select models on ``val``; score ``test`` once.
    """

    data: RecData
    source: str | None
    target: str
    ratio: float
    by: str
    cold_ratio: float
    seed: int
    new_items: np.ndarray
    old_items: np.ndarray  # every other target catalogue item (some may have no training interaction)
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    warm_users: np.ndarray  # users with target history in training
    cold_users: np.ndarray  # users without any target history in training (validation and test)
    val_users: np.ndarray
    test_users: np.ndarray
    notes: dict[str, Any] = field(default_factory=dict)

    def held_out(self, which: str, user_kind: str | None = None, item_kind: str | None = None) -> pd.DataFrame:
        """The held-out interactions of the ``which`` ("val" | "test") users, optionally of one cell."""
        if which not in ("val", "test"):
            raise ValueError(f"which must be 'val' or 'test', got {which!r}")
        if user_kind not in (None, *USER_KINDS) or item_kind not in (None, *ITEM_KINDS):
            raise ValueError(f"user_kind must be one of {USER_KINDS} and item_kind one of {ITEM_KINDS} (or None)")
        frame = self.val if which == "val" else self.test
        keep = np.ones(len(frame), dtype=bool)
        if user_kind is not None:
            keep &= (frame["user_kind"] == user_kind).to_numpy()
        if item_kind is not None:
            keep &= (frame["item_kind"] == item_kind).to_numpy()
        return frame[keep]

    def summary(self) -> dict[str, Any]:
        """Counts that describe the split (JSON-ready), with the held-out interactions of every cell."""
        cells = {f"{u}/{i}": {w: int(len(self.held_out(w, u, i))) for w in ("val", "test")}
                 for u in USER_KINDS for i in ITEM_KINDS}
        target_train = self.train[self.train["domain"] == self.target]
        return {"dataset": self.data.name, "source": self.source, "target": self.target, "ratio": self.ratio,
                "by": self.by, "cold_ratio": self.cold_ratio, "seed": self.seed,
                "new_items": int(len(self.new_items)), "old_items": int(len(self.old_items)),
                "warm_users": int(len(self.warm_users)), "cold_users": int(len(self.cold_users)),
                "val_users": int(len(self.val_users)), "test_users": int(len(self.test_users)),
                "train_interactions": int(len(self.train)), "target_train_interactions": int(len(target_train)),
                "held_out": cells, **self.notes}


def _check_split(holdout: float, val_fraction: float, cold_ratio: float, source: str | None) -> None:
    """Refuse a holdout or validation share outside (0, 1), and cold users without a source domain."""
    if not 0.0 < holdout < 1.0:
        raise ValueError("holdout must lie strictly between 0 and 1 (the share of a warm user's old items held out), got "
                         f"{holdout}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    if cold_ratio and source is None:
        raise ValueError("cold users need a source domain (their history there is all a model knows): pass source=")


def _split_users(data: RecData, source: str | None, target: str, target_inter: pd.DataFrame, cold_ratio: float,
                 val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cold users (chapter 04's cold-start split), and the validation part of the cold and of the warm users."""
    if cold_ratio:
        cold = cold_start_split(data, source, target, cold_ratio, val_fraction=val_fraction, seed=seed)
        cold_val, cold_test = cold.val_users, cold.test_users
    else:
        cold_val = cold_test = np.array([], dtype=object)
    cold_users = np.sort(np.concatenate([cold_val, cold_test]))
    warm_users = np.sort(np.setdiff1d(target_inter["user"].unique().astype(object), cold_users))
    order = np.random.default_rng(seed + 1).permutation(len(warm_users))
    n_val = int(round(val_fraction * len(warm_users)))
    warm_val = np.sort(warm_users[order[:n_val]])  # the rest of the warm users are the test part
    return cold_users, cold_val, warm_val


def _train_and_held(inter: pd.DataFrame, target: str, new_items: np.ndarray, cold_users: np.ndarray, holdout: float,
                    seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Training rows, held-out target rows, and the warm users' old-item rows that train (new items and cold users: none)."""
    in_target = (inter["domain"] == target).to_numpy()
    is_new = inter["item"].isin(new_items).to_numpy()
    is_cold = inter["user"].isin(cold_users).to_numpy()
    warm_old = inter[in_target & ~is_new & ~is_cold]
    kept, _, held_old = per_user_split(warm_old, (1.0 - holdout, 0.0, holdout), seed=seed)
    train = pd.concat([inter[~in_target], kept], ignore_index=True)
    held = pd.concat([held_old, inter[in_target & (is_new | is_cold)]], ignore_index=True)
    return train, held, kept


def _label_held(held: pd.DataFrame, train: pd.DataFrame, with_target: np.ndarray,
                new_items: np.ndarray) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Held-out rows of users something trains on, labelled by cell; the rows of users nothing trains on, counted."""
    # a user is warm when some target history of theirs trains (one whose target items are all new is cold too),
    # and a user with no training interaction at all cannot be ranked by anything personal: counted, not scored
    trained = pd.unique(train["user"])
    unknown = ~held["user"].isin(trained)
    notes: dict[str, Any] = {"held_out_users_without_any_training_history": int(held.loc[unknown, "user"].nunique()),
                             "held_out_interactions_of_those_users": int(unknown.sum())}
    held = held[~unknown].reset_index(drop=True)
    held["user_kind"] = np.where(held["user"].isin(with_target), "warm", "cold")
    held["item_kind"] = np.where(held["item"].isin(new_items), "new", "old")
    return held, notes


def new_item_split(
    data: RecData,
    target: str,
    ratio: float = 0.2,
    *,
    source: str | None = None,
    by: str = "random",
    cold_ratio: float = 0.0,
    holdout: float = 0.2,
    val_fraction: float = 0.5,
    seed: int = 0,
) -> NewItemSplit:
    """Hold out ``ratio`` of ``target``'s items as new items (``choose_new_items``) and make the 2x2 split.

    - **new items**: every interaction with them, of every user, leaves training;
    - **cold users** (``cold_ratio`` > 0 needs ``source``): the cold users of
      ``cold_start_split(data, source, target, cold_ratio, seed=seed)`` (chapter 04's), whose
      whole target history leaves training;
    - **warm users**: everyone else with target history; ``holdout`` of each one's old-item
      target interactions is held out (as ``per_user_split`` cuts it), the rest trains.

    Users are split into validation and test users (``val_fraction``; cold users as chapter 04
    splits them, warm users by a seeded permutation); a user's held-out interactions all go
    to their side.
    """
    _check_split(holdout, val_fraction, cold_ratio, source)
    target_inter = _target_interactions(data, target)
    new_items = choose_new_items(data, target, ratio, by, seed)
    catalogue = data.items.loc[data.items["domain"] == target, "item"].to_numpy()
    old_items = np.sort(catalogue[~np.isin(catalogue, new_items)])
    cold_users, cold_val, warm_val = _split_users(data, source, target, target_inter, cold_ratio, val_fraction, seed)
    train, held, kept = _train_and_held(data.interactions, target, new_items, cold_users, holdout, seed)
    with_target = pd.unique(kept["user"])
    held, notes = _label_held(held, train, with_target, new_items)
    val_side = set(cold_val) | set(warm_val)
    in_val = held["user"].map(val_side.__contains__).to_numpy(bool)
    val_users, test_users = np.sort(pd.unique(held.loc[in_val, "user"])), np.sort(pd.unique(held.loc[~in_val, "user"]))
    if "year" in data.items.columns:
        notes["items_without_year"] = int(data.items["year"].isna().sum())
    return NewItemSplit(
        data=data, source=source, target=target, ratio=float(ratio), by=by, cold_ratio=float(cold_ratio), seed=seed,
        new_items=new_items, old_items=old_items, train=train,
        val=held[in_val].reset_index(drop=True), test=held[~in_val].reset_index(drop=True),
        warm_users=np.sort(with_target),
        cold_users=np.sort(pd.unique(held.loc[held["user_kind"] == "cold", "user"])),
        val_users=val_users, test_users=test_users, notes=notes,
    )


def check_item_texts(items: pd.DataFrame, where: str, column: str = "text") -> None:
    """Fail, naming the items, when any item has no text: a new item is known by its text alone."""
    if column not in items.columns:
        raise DataError(f"{where}: the item table has no {column!r} column; text models need one text per item")
    empty = items[column].fillna("").astype(str).str.strip() == ""
    if empty.any():
        examples = items.loc[empty, "item"].head(3).tolist()
        raise DataError(f"{where}: {int(empty.sum())} item(s) have no text, e.g. {examples}; a text model "
                        "cannot place an item it cannot read: fill their text (e.g. with the title) or drop them")


__all__ = ["ITEM_KINDS", "NewItemSplit", "ORDERS", "RATIOS", "USER_KINDS", "check_item_texts", "choose_new_items",
           "new_item_split"]
