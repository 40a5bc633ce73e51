"""The sequential kind's merged setting (C2DSR's): shared users' two domains as one history, the test target each user's
last target-domain item.

``protocol.setting: merged`` builds ``cdtl.data.sequential.cross_domain_split`` and two views of
its users, with the same users, validation and test targets in both:

- ``merged``: the full merged histories, read by ``merged_sasrec`` (``CrossDomainSASRec``, the
  domain of every item known) and ``merged_sasrec_no_domain`` (the same without the domain
  embedding: what knowing the domain is worth);
- ``target``: the same histories with the source items removed, over the target catalogue
  only, read by the target-only models (``popularity``, ``item_knn``, ``gru4rec``, ``sasrec``,
  ``sasrec_shuffled``): what a single-domain recommender sees of the same users.

The sampled negatives are drawn once, in the target view, and mapped to the merged catalogue,
so every model ranks each user's target among the same items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cdtl.configfile import preview
from cdtl.data.sequential import NewDomainSplit, SequenceSplit, cross_domain_split
from cdtl.experiments.common import ConfigError
from cdtl.models.sequential import CrossDomainSASRec
from cdtl.train import set_seed

SETTINGS = ("new_domain", "merged")
MERGED_MODELS = ("merged_sasrec", "merged_sasrec_no_domain")
MERGED_TARGET_ONLY = ("popularity", "item_knn", "gru4rec", "sasrec", "sasrec_shuffled")


@dataclass
class MergedSplit:
    """A merged cross-domain split (``merged``) and its target-only view (``target``); ``columns[j]`` is the merged
    catalogue index of the view's item j."""

    merged: SequenceSplit
    target: SequenceSplit
    columns: np.ndarray
    seed: int = 0

    budget_users = NewDomainSplit.budget_users  # the same nested, seeded budgets over the (shared) target users

    def to_merged(self, items: np.ndarray) -> np.ndarray:
        """Target-view item indices (any shape) as indices of the merged catalogue."""
        return self.columns[np.asarray(items, dtype=np.int64)]

    def summary(self) -> dict[str, Any]:
        return {"setting": "merged", "merged": self.merged.summary(), "target": self.target.summary()}


def target_view(split: SequenceSplit) -> tuple[SequenceSplit, np.ndarray]:
    """``split``'s users with their source items removed, over the target catalogue only, and the merged index of each
    of its items.

    The targets do not move; a user whose items before the validation target are all source
    items keeps an empty training history (counted in ``notes``).
    """
    columns = split.target_items()
    lookup = np.full(split.n_items, -1, dtype=np.int64)
    lookup[columns] = np.arange(len(columns))

    def keep(history: np.ndarray) -> np.ndarray:
        local = lookup[np.asarray(history, dtype=np.int64)]
        return local[local >= 0]

    train = [keep(h) for h in split.train]
    view = SequenceSplit(
        name=split.name, items=split.items[columns], item_domain=split.item_domain[columns], users=split.users,
        train=train, val_history=[keep(h) for h in split.val_history], val_target=lookup[split.val_target],
        test_history=[keep(h) for h in split.test_history], test_target=lookup[split.test_target],
        target=split.target, seed=split.seed,
        notes={**split.notes, "view": "target-domain items only",
               "users_without_target_items_before_validation": int(sum(len(h) == 0 for h in train))})
    return view, columns


def merged_split(data: Any, protocol: dict[str, Any], seed: int) -> MergedSplit:
    """The merged split of ``protocol.source`` and ``protocol.target`` and its target-only view."""
    merged = cross_domain_split(data, protocol["source"], protocol["target"], seed=seed)
    view, columns = target_view(merged)
    return MergedSplit(merged, view, columns, seed)


def check_setting(cfg: dict[str, Any]) -> None:
    """Refuse an unknown ``protocol.setting``, and models that the chosen setting cannot run, naming them."""
    setting = cfg["protocol"]["setting"]
    if setting not in SETTINGS:
        raise ConfigError(f"protocol.setting must be one of {', '.join(SETTINGS)}, got {preview(setting)} (new_domain: "
                          "no user or item shared, text models transfer; merged: shared users' two domains as one "
                          "history)")
    if setting == "merged":
        bad = [m for m in cfg["models"] if m not in MERGED_MODELS + MERGED_TARGET_ONLY]
        if bad:
            raise ConfigError(f"models {bad} need protocol.setting new_domain; the merged setting runs "
                              f"{', '.join(MERGED_MODELS + MERGED_TARGET_ONLY)}")
    else:
        bad = [m for m in cfg["models"] if m in MERGED_MODELS]
        if bad:
            raise ConfigError(f"models {bad} read merged two-domain histories: they need protocol.setting merged")
    weight = cfg["model"]["source_loss_weight"]
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise ConfigError(f"model.source_loss_weight must be a number in [0, 1], got {preview(weight)}")


def merged_system(ctx: Any, name: str, rows: np.ndarray) -> tuple[CrossDomainSASRec, dict[str, Any]]:
    """Build and train ``merged_sasrec`` (or its control without the domain embedding) on the merged histories of
    ``rows``."""
    merged, m = ctx.split.merged, ctx.m
    set_seed(ctx.seed)
    model = CrossDomainSASRec(merged.item_domain == merged.target, m["dim"], max_len=m["max_len"], layers=m["layers"],
                              heads=m["heads"], dropout=m["dropout"], source_loss_weight=float(m["source_loss_weight"]),
                              domain_embedding=name == "merged_sasrec")
    histories = [merged.train[r] for r in rows]
    return model, ctx.train(model, merged, histories, ctx.val_rows(merged, rows), "train")


def scoring_view(split: Any, name: str, negatives: np.ndarray) -> tuple[SequenceSplit, np.ndarray]:
    """The split a system is scored on and its negatives: the merged one for merged models, else the target split."""
    if name in MERGED_MODELS:
        return split.merged, split.to_merged(negatives)
    return split.target, negatives


__all__ = ["MERGED_MODELS", "SETTINGS", "MergedSplit", "check_setting", "merged_split", "merged_system",
           "scoring_view", "target_view"]
