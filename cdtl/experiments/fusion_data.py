"""The fusion experiment's data: a cold-start split whose warm users' target history is also cut in time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cdtl.configfile import preview
from cdtl.data import cold_start_split, load
from cdtl.data.crossdomain import CrossDomainData, encode_split
from cdtl.data.ids import interaction_matrix
from cdtl.data.protocols import MIN_INTERACTIONS_TO_SPLIT
from cdtl.experiments.common import ConfigError


def time_split_per_user(frame: pd.DataFrame, val: float, test: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, val, test) of each user's interactions in time order: the latest ``test`` fraction, the ``val`` before it.

    A user with n >= 3 interactions gives round(n * test) (at least 1) to test and
    round(n * val) (at least 1) to validation; users with fewer keep all in training.
    Ties in time are broken by item, so the split is deterministic.
    """
    order = np.lexsort((frame["i"].to_numpy(), frame["timestamp"].to_numpy(), frame["u"].to_numpy()))
    f = frame.iloc[order].reset_index(drop=True)
    u = f["u"].to_numpy()
    counts = np.bincount(u)[u]
    pos = f.groupby("u").cumcount().to_numpy()
    n_test = np.maximum(1, np.floor(counts * test + 0.5)).astype(np.int64)
    n_val = np.maximum(1, np.floor(counts * val + 0.5)).astype(np.int64)
    splittable = counts >= MIN_INTERACTIONS_TO_SPLIT
    part = np.where(~splittable | (pos < counts - n_test - n_val), 0, np.where(pos < counts - n_test, 1, 2))
    return tuple(f[part == p].reset_index(drop=True) for p in (0, 1, 2))  # type: ignore[return-value]


@dataclass
class FusionData:
    """The encoded split with the warm users' target history cut for fusion (see the module docstring).

    ``cd.target_train`` is what the base scorers train on. ``fit`` / ``test``: the (u, i)
    pairs the fusion learns from / is scored on; ``fit_exclude`` / ``test_exclude``: the
    (n_users, n_target_items) items each user has seen at that point.
    """

    cd: CrossDomainData
    fit: pd.DataFrame
    test: pd.DataFrame
    fit_exclude: Any
    test_exclude: Any
    warm_test_users: np.ndarray
    cold_test_users: np.ndarray
    cold_fit_users: np.ndarray
    source_len: np.ndarray  # (n_users,) source training interactions
    target_len: np.ndarray  # (n_users,) target training interactions (the base scorers' part)

    def summary(self) -> dict[str, int]:
        warm_fit = int(len(np.setdiff1d(self.fit["u"].unique(), self.cold_fit_users)))
        return {"users": self.cd.n_users, "target_items": self.cd.n_target_items,
                "target_train": len(self.cd.target_train), "source_train": len(self.cd.source_train),
                "fit_interactions": len(self.fit), "test_interactions": len(self.test),
                "fit_warm_users": warm_fit, "fit_cold_users": len(self.cold_fit_users),
                "test_warm_users": len(self.warm_test_users), "test_cold_users": len(self.cold_test_users)}


def prepare(cfg: dict[str, Any], data: Any = None) -> FusionData:
    """Load the data (or take ``data``), make the cold-start split, cut warm users' target history in time, index everything."""
    ds, proto = cfg["dataset"], cfg["protocol"]
    data = load(ds["name"], ds["domains"]) if data is None else data
    for role in ("source", "target"):
        if proto[role] not in data.domains:
            raise ConfigError(f"protocol.{role} {preview(proto[role])} is not a domain of {data.name}: {data.domains}")
    split = cold_start_split(data, proto["source"], proto["target"], proto["cold_ratio"], seed=cfg["seed"])
    cd = encode_split(split)
    train, warm_val, warm_test = time_split_per_user(cd.target_train, proto["warm_val"], proto["warm_test"])
    cd = dataclasses.replace(cd, target_train=train)
    n_users, n_items = cd.n_users, cd.n_target_items
    fit_exclude = cd.train_matrix(proto["target"])
    seen = pd.concat([train, warm_val])
    test_exclude = interaction_matrix(seen["u"].to_numpy(), seen["i"].to_numpy(), n_users, n_items)
    cols = ["u", "i"]
    return FusionData(
        cd=cd,
        fit=pd.concat([warm_val[cols], cd.val[cols]], ignore_index=True),
        test=pd.concat([warm_test[cols], cd.test[cols]], ignore_index=True),
        fit_exclude=fit_exclude,
        test_exclude=test_exclude,
        warm_test_users=np.unique(warm_test["u"].to_numpy()),
        cold_test_users=np.unique(cd.test["u"].to_numpy()),
        cold_fit_users=np.unique(cd.val["u"].to_numpy()),
        source_len=np.bincount(cd.source_train["u"].to_numpy(), minlength=n_users),
        target_len=np.bincount(train["u"].to_numpy(), minlength=n_users),
    )
