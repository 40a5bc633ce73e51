"""The merged setting's views: the target-only view keeps users and targets and drops source items, negatives map to
the merged catalogue, and each model is scored on the view it reads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cdtl.data import RecData
from cdtl.data.sequential import cross_domain_split, sampled_negatives
from cdtl.experiments.sequential_merged import MergedSplit, merged_split, scoring_view, target_view


def _data() -> RecData:
    """u1: a0 b0 a1 b1 a2 b2; u2: b3 a3 b4 b5; u3: a0 a1 b0 b1 (b items are the target)."""
    rows = [("u1", i, t) for t, i in enumerate(["a0", "b0", "a1", "b1", "a2", "b2"])]
    rows += [("u2", i, t) for t, i in enumerate(["b3", "a3", "b4", "b5"])]
    rows += [("u3", i, t) for t, i in enumerate(["a0", "a1", "b0", "b1"])]
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"]).assign(domain=lambda f: f["item"].str[0])
    ids = [f"{d}{k}" for d in "ab" for k in range(8)]
    return RecData("toy", inter, pd.DataFrame({"item": ids, "domain": [i[0] for i in ids]}))


def test_the_target_view_drops_source_items_and_keeps_users_and_targets():
    merged = cross_domain_split(_data(), "a", "b", verbose=False)
    view, columns = target_view(merged)
    assert list(view.users) == list(merged.users) and (view.item_domain == "b").all()
    assert list(view.items) == [f"b{k}" for k in range(8)]
    np.testing.assert_array_equal(columns[view.test_target], merged.test_target)
    np.testing.assert_array_equal(columns[view.val_target], merged.val_target)
    u1 = list(view.users).index("u1")
    assert [view.items[i] for i in view.train[u1]] == ["b0"]  # merged: a0 b0 a1
    assert [view.items[i] for i in view.test_history[u1]] == ["b0", "b1"]  # merged: a0 b0 a1 b1 a2
    u3 = list(view.users).index("u3")
    assert len(view.train[u3]) == 0 and view.notes["users_without_target_items_before_validation"] == 1


def test_negatives_are_drawn_once_and_mapped_to_the_merged_catalogue():
    split = merged_split(_data(), {"source": "a", "target": "b"}, seed=0)
    assert isinstance(split, MergedSplit)
    negatives = sampled_negatives(split.target, "test", 3, seed=0)
    part, mapped = scoring_view(split, "merged_sasrec", negatives)
    assert part is split.merged
    assert (split.merged.item_domain[mapped] == "b").all()
    np.testing.assert_array_equal(split.merged.items[mapped], split.target.items[negatives])
    part, same = scoring_view(split, "sasrec", negatives)
    assert part is split.target and same is negatives
    assert split.summary()["setting"] == "merged"
    np.testing.assert_array_equal(split.budget_users(1.0), np.arange(split.target.n_users))
