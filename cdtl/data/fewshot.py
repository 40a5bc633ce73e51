"""Domains that share no users: train with no user in both, then test users known by 0, 1, 3 or 5 target interactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cdtl.data.domains import overlap_users
from cdtl.data.tables import DataError, RecData

#: the numbers of known target interactions the course evaluates a new-domain user with
SHOTS = (0, 1, 3, 5)


@dataclass
class FewShotSplit:
    """Training data in which no user is active in both domains, and evaluation users known by a few target items.

    ``train`` holds the interactions of users active in one domain only. Evaluation users
    are never in it: for each, ``known`` holds their first ``max(shots)`` target interactions
    (in time order, with their ``position`` 0, 1, ...), of which a model may read the first
    k at k shots, and ``source_known`` their source history (empty when the domains come from
    different platforms). ``val`` and ``test`` hold every later target interaction of the
    validation and test users: the same items to find at every k, so the curve over k
    compares like with like.
    """

    data: RecData
    source: str
    target: str
    shots: tuple[int, ...]
    seed: int
    train: pd.DataFrame
    known: pd.DataFrame
    source_known: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    val_users: np.ndarray
    test_users: np.ndarray
    notes: dict[str, Any] = field(default_factory=dict)

    def history(self, users: Sequence[str] | np.ndarray, shots: int) -> pd.DataFrame:
        """What a model may know of ``users`` at ``shots`` known target interactions: source history + first ``shots``."""
        if shots not in self.shots:
            raise ValueError(f"shots must be one of {self.shots}, got {shots!r}")
        users = np.asarray(users)
        target = self.known[self.known["user"].isin(users) & (self.known["position"] < shots)]
        source = self.source_known[self.source_known["user"].isin(users)]
        return pd.concat([source, target.drop(columns="position")], ignore_index=True)

    def held_out(self, which: str) -> pd.DataFrame:
        if which not in ("val", "test"):
            raise ValueError(f"which must be 'val' or 'test', got {which!r}")
        return self.val if which == "val" else self.test

    def summary(self) -> dict[str, Any]:
        """Counts that describe the split (JSON-ready)."""
        by_domain = self.train.groupby("domain")["user"].nunique()
        return {"dataset": self.data.name, "source": self.source, "target": self.target, "shots": list(self.shots),
                "seed": self.seed, "train_users": {d: int(by_domain.get(d, 0)) for d in (self.source, self.target)},
                "train_interactions": int(len(self.train)), "val_users": int(len(self.val_users)),
                "test_users": int(len(self.test_users)), "val_interactions": int(len(self.val)),
                "test_interactions": int(len(self.test)), "eval_users_with_source_history":
                int(self.source_known["user"].nunique()), **self.notes}


def _check_shots(data: RecData, source: str, target: str, shots: Sequence[int], eval_ratio: float,
                 val_fraction: float) -> tuple[int, ...]:
    """The sorted distinct shots, once every argument is checked and both domains have interactions."""
    shots = tuple(sorted({int(k) for k in shots}))
    if not shots or shots[0] < 0:
        raise ValueError(f"shots must be non-negative integers, e.g. {SHOTS}, got {shots}")
    if not 0.0 < eval_ratio < 1.0 or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"eval_ratio and val_fraction must lie strictly between 0 and 1, got {eval_ratio}, {val_fraction}")
    for name, dom in (("source", source), ("target", target)):
        if dom not in data.domains:
            raise DataError(f"{data.name}: unknown {name} domain {dom!r}; domains are {data.domains}")
    inter = data.interactions
    if not (inter["domain"] == target).any():
        raise DataError(f"{data.name}: target domain {target!r} has no users (no interactions)")
    if not (inter["domain"] == source).any():
        raise DataError(f"{data.name}: source domain {source!r} has no users (no interactions)")
    return shots


def _eval_users(data: RecData, target: str, in_target: np.ndarray, shared: pd.Index, shots: tuple[int, ...],
                eval_ratio: float, max_eval_users: int | None, rng: np.random.Generator) -> np.ndarray:
    """The sorted evaluation users: shared users, or a seeded share of target users, with more than max(shots)."""
    need = shots[-1] + 1
    counts = data.interactions[in_target].groupby("user").size()
    enough = counts.index[counts >= need]
    if len(shared):
        candidates = np.sort(np.intersect1d(shared.to_numpy(), enough.to_numpy()))
    else:
        pool = np.sort(enough.to_numpy())
        candidates = np.sort(pool[rng.permutation(len(pool))[: int(round(eval_ratio * len(pool)))]])
    if max_eval_users is not None and len(candidates) > int(max_eval_users):
        candidates = np.sort(candidates[rng.permutation(len(candidates))[: int(max_eval_users)]])
    if len(candidates) < 2:
        raise DataError(f"{data.name}: {len(candidates)} user(s) of {target!r} have at least {need} target interactions "
                        f"(more than max(shots) = {shots[-1]}): too few to validate and test on; lower the shots")
    return candidates


def _training_part(data: RecData, source: str, target: str, evaluated: np.ndarray, shared: pd.Index) -> pd.DataFrame:
    """Every interaction of the users who are neither evaluated nor shared; the target domain must keep some."""
    inter = data.interactions
    dropped = inter["user"].isin(shared).to_numpy() & ~evaluated  # shared users too short to evaluate
    train = inter[~evaluated & ~dropped].reset_index(drop=True)
    if not (train["domain"] == target).any():
        raise DataError(f"{data.name}: no user of the target domain {target!r} is left to train on: every one is shared "
                        f"with {source!r}, and shared users never train in this protocol; it needs users who are in the "
                        f"target domain only")
    return train


def _known_and_later(inter: pd.DataFrame, rows: np.ndarray, max_shots: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The evaluation users' target interactions in time order: the first ``max_shots`` (with positions), the rest."""
    mine = inter[rows].copy()
    time = mine["timestamp"] if "timestamp" in mine.columns else pd.Series(np.arange(len(mine)), index=mine.index)
    mine = mine.assign(_t=time.to_numpy()).sort_values(["user", "_t"], kind="stable").drop(columns="_t")
    mine["position"] = mine.groupby("user").cumcount()
    known = mine[mine["position"] < max_shots].reset_index(drop=True)
    later = mine[mine["position"] >= max_shots].drop(columns="position")
    return known, later


def few_shot_split(
    data: RecData,
    source: str,
    target: str,
    *,
    shots: Sequence[int] = SHOTS,
    eval_ratio: float = 0.2,
    val_fraction: float = 0.5,
    max_eval_users: int | None = None,
    seed: int = 0,
) -> FewShotSplit:
    """Evaluation users leave training entirely, and so does every other user of both domains: no shared user trains.

    When the domains share users (the Amazon pair), the **evaluation users are the shared
    users** with more than ``max(shots)`` target interactions: their source history is
    known at test time, but no user ties the domains in training; the other shared users
    are dropped (counted in ``notes``). When they share none (two platforms, see
    ``cross_platform``), a seeded ``eval_ratio`` of the target users with enough
    interactions are the evaluation users. ``max_eval_users`` caps them (a seeded sample).
    """
    shots = _check_shots(data, source, target, shots, eval_ratio, val_fraction)
    inter = data.interactions
    in_target = (inter["domain"] == target).to_numpy()
    shared = overlap_users(data, source, target)
    rng = np.random.default_rng(seed)
    candidates = _eval_users(data, target, in_target, shared, shots, eval_ratio, max_eval_users, rng)
    n_val = max(1, int(round(val_fraction * len(candidates))))
    order = rng.permutation(len(candidates))
    val_users, test_users = np.sort(candidates[order[:n_val]]), np.sort(candidates[order[n_val:]])

    evaluated = inter["user"].isin(candidates).to_numpy()
    train = _training_part(data, source, target, evaluated, shared)
    known, later = _known_and_later(inter, evaluated & in_target, shots[-1])
    source_known = inter[evaluated & (inter["domain"] == source).to_numpy()].reset_index(drop=True)
    return FewShotSplit(
        data=data, source=source, target=target, shots=shots, seed=seed, train=train, known=known,
        source_known=source_known, val=later[later["user"].isin(val_users)].reset_index(drop=True),
        test=later[later["user"].isin(test_users)].reset_index(drop=True), val_users=val_users, test_users=test_users,
        notes={"shared_users": int(len(shared)),
               "shared_users_dropped": int(len(shared) - len(np.intersect1d(shared, candidates))) if len(shared) else 0},
    )


def cross_platform(source: RecData, target: RecData, *, source_domain: str | None = None, target_domain: str,
                   names: tuple[str, str] | None = None) -> RecData:
    """Two platforms as one two-domain dataset (implicit feedback): e.g. MovieLens films -> Amazon food.

    ``source_domain``/``target_domain`` pick one domain of each (``None``: all of a
    single-domain dataset). User and item ids are prefixed by their domain's name, so no user
    or item is shared; ratings are dropped (the platforms' scales differ); ``timestamp`` keeps
    each user's order. The domains are named ``names`` (default: the two domain names).
    """
    parts = []
    for data, domain, side in ((source, source_domain, "source"), (target, target_domain, "target")):
        inter, its = data.interactions, data.items
        if domain is not None:
            if domain not in data.domains:
                raise DataError(f"{data.name}: unknown {side} domain {domain!r}; domains are {data.domains}")
            inter, its = inter[inter["domain"] == domain], its[its["domain"] == domain]
        if inter.empty:
            raise DataError(f"{data.name}: the {side} domain {domain or '(all)'} has no users (no interactions)")
        parts.append((data.name, domain or data.name, inter, its))
    labels = names or (parts[0][1], parts[1][1])
    if labels[0] == labels[1]:
        raise ValueError(f"the two domains need different names, got {labels}; pass names=(source, target)")
    frames, tables = [], []
    for (_, _, inter, its), label in zip(parts, labels):
        frame = pd.DataFrame({"user": f"{label}:" + inter["user"], "item": f"{label}:" + inter["item"], "domain": label})
        if "timestamp" in inter.columns:
            frame["timestamp"] = inter["timestamp"].to_numpy()
        frames.append(frame)
        tables.append(its[["item", "title", "text"]].assign(item=f"{label}:" + its["item"], domain=label))
    return RecData(name=f"{parts[0][0]}->{parts[1][0]}", interactions=pd.concat(frames, ignore_index=True),
                   items=pd.concat(tables, ignore_index=True), notes={"cross_platform": list(labels)})


__all__ = ["FewShotSplit", "SHOTS", "cross_platform", "few_shot_split"]
