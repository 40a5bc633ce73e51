"""The cold-start protocol: hide some bridge users' target history, then validate and test on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cdtl.data.domains import overlap_users
from cdtl.data.tables import DataError, RecData, check_unique_pairs


@dataclass
class ColdStartSplit:
    """Everything a cross-domain model needs, with the cold users' target history held out.

    ``train`` holds every source interaction plus the target interactions of warm users;
    no target interaction of a cold user is in it. ``val`` and ``test`` hold the held-out
    target interactions of the validation and test cold users. Select models on ``val``;
    score ``test`` once.
    """

    data: RecData
    source: str
    target: str
    cold_ratio: float
    seed: int
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    warm_users: np.ndarray  # overlapping users whose target history is in training
    val_users: np.ndarray  # cold users for model selection
    test_users: np.ndarray  # cold users scored once
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def cold_users(self) -> np.ndarray:
        """Validation and test cold users together (sorted)."""
        return np.sort(np.concatenate([self.val_users, self.test_users]))

    def source_history(self, users: np.ndarray | list[str] | None = None) -> pd.DataFrame:
        """Source-domain interactions (from ``train``) of ``users`` (default: every cold user)."""
        users = self.cold_users if users is None else np.asarray(users)
        part = self.train[self.train["domain"] == self.source]
        return part[part["user"].isin(users)]

    def domain_train(self, domain: str) -> pd.DataFrame:
        """Training interactions of one domain."""
        return self.train[self.train["domain"] == domain]

    def summary(self) -> dict[str, Any]:
        """Counts that describe the split (JSON-ready)."""
        tgt_train = self.domain_train(self.target)
        target_items = self.data.items.loc[self.data.items["domain"] == self.target, "item"]
        return {
            "dataset": self.data.name,
            "source": self.source,
            "target": self.target,
            "cold_ratio": self.cold_ratio,
            "seed": self.seed,
            "overlap_users": int(len(self.warm_users) + len(self.val_users) + len(self.test_users)),
            "warm_users": int(len(self.warm_users)),
            "val_users": int(len(self.val_users)),
            "test_users": int(len(self.test_users)),
            "train_interactions": {d: int((self.train["domain"] == d).sum()) for d in (self.source, self.target)},
            "val_interactions": int(len(self.val)),
            "test_interactions": int(len(self.test)),
            # catalogue items nobody interacted with, and items whose only interactions were held out
            "target_items_without_interactions": int((~target_items.isin(self.data.interactions["item"])).sum()),
            "target_items_only_in_held_out": int(
                (target_items.isin(self.data.interactions["item"]) & ~target_items.isin(tgt_train["item"])).sum()),
            **self.notes,
        }


def cold_start_split(
    data: RecData,
    source: str,
    target: str,
    cold_ratio: float = 0.2,
    *,
    val_fraction: float = 0.5,
    seed: int = 0,
) -> ColdStartSplit:
    """Make ``cold_ratio`` of the users active in both domains cold-start users in ``target``.

    Deterministic per ``seed``: overlap users are sorted, then permuted by a seeded
    generator. The cold users are split into validation (``val_fraction``) and test users;
    every other user keeps all their interactions in training.
    """
    _check_arguments(data, source, target, cold_ratio, val_fraction, seed)
    if source == target:
        raise ValueError(f"source and target must differ, both are {source!r}")
    if not 0.0 < cold_ratio < 1.0:
        raise ValueError(f"cold_ratio must be strictly between 0 and 1 (e.g. 0.2, 0.5, 0.8), got {cold_ratio}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
    check_unique_pairs(data.interactions, f"{data.name}: interactions")
    bridge = overlap_users(data, source, target)
    if len(bridge) == 0:
        raise DataError(f"{data.name}: domains {source!r} and {target!r} share no users; cross-domain transfer needs some")
    n_cold = int(round(cold_ratio * len(bridge)))
    n_val = int(round(val_fraction * n_cold))
    if n_cold >= len(bridge):
        raise ValueError(f"cold_ratio={cold_ratio} of {len(bridge)} overlapping users leaves no warm users to learn the "
                         "bridge from")
    if n_val == 0 or n_val == n_cold:
        raise ValueError(
            f"cold_ratio={cold_ratio} gives {n_cold} cold users out of {len(bridge)} overlapping users, "
            f"too few to split into validation and test with val_fraction={val_fraction}"
        )
    order = np.random.default_rng(seed).permutation(len(bridge))
    shuffled = bridge.to_numpy()[order]
    val_users = np.sort(shuffled[:n_val])
    test_users = np.sort(shuffled[n_val:n_cold])
    warm_users = np.sort(shuffled[n_cold:])

    inter = data.interactions
    in_target = inter["domain"] == target
    held = in_target & inter["user"].isin(shuffled[:n_cold])
    return ColdStartSplit(
        data=data,
        source=source,
        target=target,
        cold_ratio=cold_ratio,
        seed=seed,
        train=inter[~held].reset_index(drop=True),
        val=inter[held & inter["user"].isin(val_users)].reset_index(drop=True),
        test=inter[held & inter["user"].isin(test_users)].reset_index(drop=True),
        warm_users=warm_users,
        val_users=val_users,
        test_users=test_users,
    )


def _check_arguments(data: object, source: object, target: object, cold_ratio: object, val_fraction: object,
                     seed: object) -> None:
    """Wrong types fail here by name (``cold_ratio='0.2'``, ``seed=1.5``), not deep inside numpy."""
    if not isinstance(data, RecData):
        raise TypeError(f"data must be a RecData (from cdtl.data.load, load_tables, ...), got {type(data).__name__}")
    for name, value in (("source", source), ("target", target)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a domain name (str), got {value!r} ({type(value).__name__})")
    for name, value in (("cold_ratio", cold_ratio), ("val_fraction", val_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a number between 0 and 1 (e.g. 0.2), got {value!r} ({type(value).__name__})")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative integer, got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")


def split_checks(split: ColdStartSplit) -> dict[str, Any]:
    """What makes a cold-start split sound, measured: a leak count, the cold share, and five checks that must hold.

    - ``leaked_interactions``: cold users' target interactions in training (must be 0);
    - ``cold_share``: cold users / overlap users, the ratio actually made;
    - ``ratio_honoured``: the cold users are ``cold_ratio`` of the overlap users, to the nearest user;
    - ``users_disjoint``: validation, test and warm users share nobody;
    - ``cold_have_source_history``: every cold user keeps source history in training (the bridge);
    - ``cold_have_held_out``: every cold user has held-out target interactions to be scored on;
    - ``nothing_lost``: train, validation and test together hold every interaction once.
    """
    bridge = overlap_users(split.data, split.source, split.target)
    cold = set(split.cold_users)
    val, test, warm = set(split.val_users), set(split.test_users), set(split.warm_users)
    return {
        "leaked_interactions": int(split.domain_train(split.target)["user"].isin(split.cold_users).sum()),
        "cold_share": round(len(cold) / len(bridge), 4),
        "ratio_honoured": bool(abs(len(cold) - split.cold_ratio * len(bridge)) <= 0.5),
        "users_disjoint": not (val & test) and not (cold & warm),
        "cold_have_source_history": set(split.source_history()["user"]) == cold,
        "cold_have_held_out": (set(split.val["user"]) | set(split.test["user"])) == cold,
        "nothing_lost": len(split.train) + len(split.val) + len(split.test) == len(split.data.interactions),
    }


def check_split(split: ColdStartSplit) -> dict[str, Any]:
    """``split_checks(split)``, or a ``ValueError`` naming every check the split fails."""
    checks = split_checks(split)
    failed = [name for name, value in checks.items() if value is False]
    if checks["leaked_interactions"]:
        failed.insert(0, f"leaked_interactions ({checks['leaked_interactions']} held-out interactions in training)")
    if failed:
        raise ValueError(f"the {split.source} -> {split.target} split of {split.data.name} (cold ratio "
                         f"{split.cold_ratio}, seed {split.seed}) fails: {', '.join(failed)}")
    return checks
