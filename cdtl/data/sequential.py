"""Ordered histories for next-item recommendation: leave-last-out by time, cross-domain merged sequences, new-domain budgets.

Every protocol here starts from ``order_histories``: each user's interactions sorted by
``timestamp`` (MovieLens seconds, the Amazon pair's ``position``). Interactions of one user
with the same timestamp (a tie) are ordered by a seeded random key drawn over the
interactions sorted by (user, item), so the order depends on the seed and never on the
file's row order or ``PYTHONHASHSEED``. An item repeated back to back in a history is kept
once (the repeat says nothing new about what comes next); both counts land in ``notes``.

Item indices are rows of the split's catalogue (``split.items``). Models see histories as
``left_pad``'s matrices: item j is j + 1 and 0 is padding; a history longer than ``max_len``
keeps its ``max_len`` most recent items (truncated from the left).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cdtl.data.tables import DataError, RecData, require_columns

MIN_LENGTH = 3  # training item(s), one validation target, one test target
STAGES = ("val", "test")


@dataclass
class SequenceSplit:
    """Leave-last-out histories over one item catalogue: train on ``train``, select on ``val_*``, score ``test_*`` once.

    Row u is user ``users[u]``. ``train[u]`` holds the items before the validation target
    (oldest first); ``val_history[u]`` is what a model reads to predict ``val_target[u]``,
    ``test_history[u]`` what it reads to predict ``test_target[u]``. In one domain the test
    history is the training history plus the validation target; on merged cross-domain
    sequences it also holds the source items between the two targets. ``target`` names the
    domain whose items are ranked (None: every item of the catalogue).
    """

    name: str
    items: np.ndarray  # item ids; index j is items[j]
    item_domain: np.ndarray  # domain of every item ("" without domains)
    users: np.ndarray  # user ids; row u
    train: list[np.ndarray]
    val_history: list[np.ndarray]
    val_target: np.ndarray
    test_history: list[np.ndarray]
    test_target: np.ndarray
    target: str | None = None
    seed: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        return len(self.users)

    def target_items(self) -> np.ndarray:
        """Indices of the items a model ranks: the target domain's (every item when ``target`` is None)."""
        if self.target is None:
            return np.arange(self.n_items)
        return np.flatnonzero(self.item_domain == self.target)

    def stage(self, stage: str) -> tuple[list[np.ndarray], np.ndarray]:
        """(histories, targets) of ``"val"`` or ``"test"``."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        return (self.val_history, self.val_target) if stage == "val" else (self.test_history, self.test_target)

    def index_of(self, item_ids: Any, where: str = "history") -> np.ndarray:
        """Catalogue indices of ``item_ids`` (a user's own ordered history); an unknown id is a ``DataError`` naming it."""
        lookup = pd.Index(self.items)
        ids = np.asarray(list(item_ids), dtype=object).astype(str)
        idx = lookup.get_indexer(ids)
        unknown = ids[idx < 0]
        if unknown.size:
            raise DataError(f"{where}: {unknown.size} item id(s) not in the catalogue of {self.name}, e.g. "
                            f"{sorted(set(unknown.tolist()))[:5]}; every item of a history must be a known item")
        return idx.astype(np.int64)

    def summary(self) -> dict[str, Any]:
        """Counts that describe the split (JSON-ready)."""
        lengths = np.array([len(h) for h in self.train])
        return {"dataset": self.name, "target": self.target, "seed": self.seed, "users": self.n_users,
                "items": self.n_items, "ranked_items": len(self.target_items()),
                "train_interactions": int(lengths.sum()), "median_train_length": float(np.median(lengths)),
                **self.notes}


@dataclass
class NewDomainSplit:
    """Pre-train on ``pretrain`` (source items, source users), transfer to ``target``: no user or item in both."""

    pretrain: SequenceSplit
    target: SequenceSplit
    seed: int = 0

    def budget_users(self, fraction: float) -> np.ndarray:
        """Rows of ``target``'s users whose training histories a budget of ``fraction`` may train on.

        The budgets are nested (1 % of the users are among the 5 %, ...): one seeded
        permutation, cut at ``ceil(fraction * users)``, at least one user.
        """
        if not 0.0 < float(fraction) <= 1.0:
            raise ValueError(f"a target budget is a fraction of target users in (0, 1], got {fraction!r}")
        n = self.target.n_users
        order = np.random.default_rng([self.seed, 1]).permutation(n)
        return np.sort(order[: max(1, int(np.ceil(float(fraction) * n)))])

    def summary(self) -> dict[str, Any]:
        return {"pretrain": self.pretrain.summary(), "target": self.target.summary(),
                "shared_users": int(np.isin(self.pretrain.users, self.target.users).sum()),
                "shared_items": int(np.isin(self.pretrain.items, self.target.items).sum())}


def order_histories(inter: pd.DataFrame, seed: int = 0, where: str = "interactions") -> tuple[pd.DataFrame, dict[str, int]]:
    """``inter`` sorted into each user's history (oldest first), ties broken by a seeded key, back-to-back repeats kept once.

    Returns the ordered frame and the counts ``tied_interactions`` (rows sharing their user's
    timestamp with another row) and ``consecutive_repeats_collapsed``.
    """
    require_columns(inter, ("user", "item"), where)
    if "timestamp" not in inter.columns:
        raise DataError(f"{where}: the sequential protocols need a 'timestamp' column (a time or a position in the "
                        f"history) to order each user's interactions; found columns {list(inter.columns)}")
    if inter.empty:
        raise DataError(f"{where}: no interactions to order")
    if inter["timestamp"].isna().any():
        raise DataError(f"{where}: {int(inter['timestamp'].isna().sum())} interaction(s) have no timestamp")
    frame = inter.assign(user=inter["user"].astype(str), item=inter["item"].astype(str))
    canonical = frame.sort_values(["user", "item", "timestamp"], kind="stable")
    tie = pd.Series(np.random.default_rng(seed).random(len(canonical)), index=canonical.index)
    frame = frame.assign(_tie=tie).sort_values(["user", "timestamp", "_tie"], kind="stable")
    tied = int(frame.duplicated(["user", "timestamp"], keep=False).sum())
    repeat = (frame["user"].to_numpy()[1:] == frame["user"].to_numpy()[:-1]) & \
             (frame["item"].to_numpy()[1:] == frame["item"].to_numpy()[:-1])
    keep = np.concatenate([[True], ~repeat])
    frame = frame[keep].drop(columns="_tie").reset_index(drop=True)
    return frame, {"tied_interactions": tied, "consecutive_repeats_collapsed": int((~keep).sum())}


def _catalogue(data: RecData, domains: list[str] | None) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, their domains) of the item table, restricted to ``domains``; sorted by id."""
    items = data.items
    dom = items["domain"].astype(str) if "domain" in items.columns else pd.Series("", index=items.index)
    keep = dom.isin(domains) if domains is not None else pd.Series(True, index=items.index)
    table = pd.DataFrame({"item": items.loc[keep, "item"].astype(str), "domain": dom[keep]}).sort_values("item")
    return table["item"].to_numpy(), table["domain"].to_numpy()


def _known(inter: pd.DataFrame, items: np.ndarray, where: str) -> np.ndarray:
    """Catalogue indices of ``inter``'s items; an item missing from the item table is reported, never dropped."""
    idx = pd.Index(items).get_indexer(inter["item"].astype(str))
    if (idx < 0).any():
        bad = inter.loc[idx < 0, ["user", "item"]].astype(str)
        raise DataError(f"{where}: {len(bad)} interaction(s) of {bad['user'].nunique()} user(s) name items missing "
                        f"from the item table, e.g. user {bad.iloc[0]['user']!r} item {bad.iloc[0]['item']!r}; "
                        "add them to the item table or remove those interactions explicitly")
    return idx.astype(np.int64)


def _domain_rows(data: RecData, domains: list[str]) -> pd.DataFrame:
    inter = data.interactions
    if "domain" not in inter.columns:
        raise DataError(f"{data.name}: interactions have no 'domain' column; domains {domains} need one")
    for dom in domains:
        if not (inter["domain"] == dom).any():
            raise DataError(f"{data.name}: the domain {dom!r} has no interactions (domains with interactions: "
                            f"{sorted(inter['domain'].astype(str).unique())})")
    return inter[inter["domain"].isin(domains)]


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(message)


def leave_last_out(data: RecData, domain: str | None = None, *, min_length: int = MIN_LENGTH, seed: int = 0,
                   users: Any = None, verbose: bool = True) -> SequenceSplit:
    """Each user's last item (of ``domain``, or of all data) is the test target, the one before it validation.

    Users with fewer than ``min_length`` (>= 3) interactions are excluded, and their count is
    printed and kept in ``notes``; ``users`` (ids) restricts the split to those users.
    """
    if min_length < MIN_LENGTH:
        raise ValueError(f"min_length must be at least {MIN_LENGTH} (a training item and two targets), got {min_length}")
    where = f"{data.name}" + (f" ({domain})" if domain else "")
    inter = _domain_rows(data, [domain]) if domain is not None else data.interactions
    if users is not None:
        inter = inter[inter["user"].astype(str).isin(np.asarray(users).astype(str))]
        if inter.empty:
            raise DataError(f"{where}: none of the {len(users)} given users has an interaction")
    items, item_domain = _catalogue(data, [domain] if domain is not None else None)
    frame, notes = order_histories(inter, seed, where)
    frame["i"] = _known(frame, items, where)
    lengths = frame.groupby("user", sort=True)["i"].size()
    short = lengths[lengths < min_length]
    _say(verbose, f"{where}: {len(short)} of {len(lengths)} users have fewer than {min_length} interactions "
                  "and are excluded")
    kept = frame[~frame["user"].isin(short.index)]
    if kept.empty:
        raise DataError(f"{where}: no user has {min_length} or more interactions; the protocol needs some")
    groups = kept.groupby("user", sort=True)["i"]
    seqs = [g.to_numpy() for _, g in groups]
    return SequenceSplit(
        name=data.name, items=items, item_domain=item_domain, users=np.array(list(groups.groups), dtype=object),
        train=[s[:-2] for s in seqs], val_history=[s[:-2] for s in seqs],
        val_target=np.array([s[-2] for s in seqs]), test_history=[s[:-1] for s in seqs],
        test_target=np.array([s[-1] for s in seqs]), target=domain, seed=seed,
        notes={**notes, "users_excluded_short": len(short), "min_length": min_length})


def cross_domain_split(data: RecData, source: str, target: str, *, seed: int = 0, verbose: bool = True) -> SequenceSplit:
    """Merged two-domain histories (C2DSR's setting): the test target is each user's last ``target``-domain item.

    The validation target is the user's target-domain item before it; training is every item
    (of both domains) before the validation target; the test history also holds the source
    items between the two targets. Users with fewer than two target-domain items, or with
    nothing before the validation target, are excluded with a printed count.
    """
    if source == target:
        raise ValueError(f"source and target must differ, both are {source!r}")
    where = f"{data.name} ({source} + {target})"
    items, item_domain = _catalogue(data, [source, target])
    frame, notes = order_histories(_domain_rows(data, [source, target]), seed, where)
    frame["i"] = _known(frame, items, where)
    is_target = (frame["domain"].astype(str) == target).to_numpy()
    rows = {"train": [], "val_history": [], "val_target": [], "test_history": [], "test_target": []}
    kept_users, excluded = [], 0
    for user, part in frame.assign(_t=is_target).groupby("user", sort=True):
        seq, tgt = part["i"].to_numpy(), np.flatnonzero(part["_t"].to_numpy())
        if len(tgt) < 2 or tgt[-2] == 0:
            excluded += 1
            continue
        last, before = tgt[-1], tgt[-2]
        kept_users.append(user)
        rows["train"].append(seq[:before])
        rows["val_history"].append(seq[:before])
        rows["val_target"].append(seq[before])
        rows["test_history"].append(seq[:last])
        rows["test_target"].append(seq[last])
    _say(verbose, f"{where}: {excluded} users have fewer than two {target} items or nothing before them "
                  "and are excluded")
    if not kept_users:
        raise DataError(f"{where}: no user has two {target} items after another item; the protocol needs some")
    return SequenceSplit(
        name=data.name, items=items, item_domain=item_domain, users=np.array(kept_users, dtype=object),
        train=rows["train"], val_history=rows["val_history"], val_target=np.array(rows["val_target"]),
        test_history=rows["test_history"], test_target=np.array(rows["test_target"]), target=target, seed=seed,
        notes={**notes, "users_excluded_short": excluded, "source": source})


def new_domain_split(data: RecData, source: str, target: str, *, target_share: float = 0.5, seed: int = 0,
                     min_length: int = MIN_LENGTH, verbose: bool = True) -> NewDomainSplit:
    """Source histories to pre-train on and target histories to transfer to, with no user or item in both.

    A user with ``min_length`` interactions in one domain only belongs to it; a user with
    enough in both goes to the target with probability ``target_share`` (a seeded draw over
    the sorted ids), else to the source. Items belong to their domain, so none is shared.
    """
    if source == target:
        raise ValueError(f"source and target must differ, both are {source!r}")
    if not 0.0 < float(target_share) < 1.0:
        raise ValueError(f"target_share must be in (0, 1), got {target_share!r}")
    inter = _domain_rows(data, [source, target])
    counts = inter.assign(user=inter["user"].astype(str)).groupby(["user", "domain"]).size().unstack(fill_value=0)
    in_src, in_tgt = counts[source] >= min_length, counts[target] >= min_length
    both = np.sort(counts.index[in_src & in_tgt].to_numpy().astype(str))
    to_target = both[np.random.default_rng([seed, 0]).random(len(both)) < float(target_share)]
    target_users = np.union1d(counts.index[in_tgt & ~in_src].to_numpy().astype(str), to_target)
    source_users = np.setdiff1d(counts.index[in_src].to_numpy().astype(str), target_users)
    if len(target_users) == 0 or len(source_users) == 0:
        raise DataError(f"{data.name}: {len(source_users)} source and {len(target_users)} target users have "
                        f"{min_length}+ interactions; a new-domain split needs both")
    pre = leave_last_out(data, source, min_length=min_length, seed=seed, users=source_users, verbose=verbose)
    tgt = leave_last_out(data, target, min_length=min_length, seed=seed, users=target_users, verbose=verbose)
    tgt.notes["users_of_both_domains_sent_here"] = len(to_target)
    return NewDomainSplit(pre, tgt, seed)


def left_pad(histories: list[np.ndarray], max_len: int) -> tuple[np.ndarray, int]:
    """(len(histories), max_len) int64 matrix of item index + 1 (0 pads the left), and how many histories were truncated.

    A history longer than ``max_len`` keeps its ``max_len`` most recent items (truncated from the left).
    """
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 1:
        raise ValueError(f"max_len must be a positive integer, got {max_len!r}")
    out = np.zeros((len(histories), int(max_len)), dtype=np.int64)
    truncated = 0
    for row, hist in enumerate(histories):
        hist = np.asarray(hist, dtype=np.int64)[-int(max_len):]
        truncated += int(len(histories[row]) > max_len)
        if len(hist):
            out[row, -len(hist):] = hist + 1
    return out, truncated


def shuffle_histories(histories: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Every history's items in a seeded random order: the control that tells whether a model uses order at all."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(np.asarray(h)) for h in histories]


def sampled_negatives(split: SequenceSplit, stage: str = "test", n: int = 999, seed: int = 0) -> np.ndarray:
    """(users, n) items of the target domain sampled for each user, none in their history or their target (C2DSR's view).

    Drawn uniformly without replacement by a generator seeded with ``seed``; a catalogue too
    small to give ``n`` negatives to a user is an error.
    """
    histories, targets = split.stage(stage)
    pool = split.target_items()
    rng = np.random.default_rng([seed, 2])
    out = np.empty((split.n_users, n), dtype=np.int64)
    for u, (hist, tgt) in enumerate(zip(histories, targets)):
        seen = np.union1d(np.asarray(hist, dtype=np.int64), [tgt])
        free = len(pool) - int(np.isin(seen, pool).sum())
        if free < n:
            raise DataError(f"{split.name}: user {split.users[u]!r} has only {free} {split.target or ''} items left to "
                            f"sample {n} negatives from")
        chosen = np.zeros(0, dtype=np.int64)
        while len(chosen) < n:
            draw = pool[rng.integers(0, len(pool), size=2 * n)]
            draw = draw[~np.isin(draw, seen) & ~np.isin(draw, chosen)]
            _, first = np.unique(draw, return_index=True)
            chosen = np.concatenate([chosen, draw[np.sort(first)]])
        out[u] = chosen[:n]
    return out


__all__ = ["MIN_LENGTH", "NewDomainSplit", "SequenceSplit", "cross_domain_split", "leave_last_out", "left_pad",
           "new_domain_split", "order_histories", "sampled_negatives", "shuffle_histories"]
