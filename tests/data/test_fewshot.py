"""The no-shared-users protocols: few-shot training shares no user with evaluation, cross-platform pairs share no ids."""

from __future__ import annotations

import pandas as pd
import pytest
from dated_items import toy

from cdtl.data.fewshot import cross_platform, few_shot_split
from cdtl.data.tables import DataError, RecData


def test_few_shot_training_shares_no_user_and_evaluates_the_shared_ones():
    data = toy()
    split = few_shot_split(data, "src", "tgt", shots=(0, 1, 3, 5), seed=0)
    train = split.train
    assert not set(train.loc[train["domain"] == "src", "user"]) & set(train.loc[train["domain"] == "tgt", "user"])
    evaluated = set(split.val_users) | set(split.test_users)
    assert evaluated and not evaluated & set(train["user"])
    assert evaluated <= set(data.interactions.loc[data.interactions["domain"] == "src", "user"])  # the shared users
    # at k shots a model reads the user's first k target items (and their source history), never a held-out one
    user = split.test_users[0]
    mine = data.interactions[(data.interactions["user"] == user) & (data.interactions["domain"] == "tgt")]
    ordered = mine.sort_values("timestamp")["item"].tolist()
    for k in split.shots:
        seen = split.history([user], k)
        assert seen.loc[seen["domain"] == "tgt", "item"].tolist() == ordered[:k]
        assert (seen["domain"] == "src").sum() == 3
    assert split.test.loc[split.test["user"] == user, "item"].tolist() == ordered[5:]


def test_a_pair_where_every_target_user_is_shared_fails_before_training():
    inter = toy().interactions
    both = inter[inter["user"] != "u07"]  # u07, the one target-only user, is gone
    with pytest.raises(DataError, match="no user of the target domain 'tgt' is left to train on"):
        few_shot_split(RecData("toy", both, toy().items), "src", "tgt", shots=(0, 1), seed=0)


def test_cross_platform_pairs_share_no_ids_and_sample_target_users():
    a, b = toy(0), toy(1)
    pair = cross_platform(a, b, source_domain="src", target_domain="tgt", names=("films", "food"))
    assert pair.domains == ["films", "food"]
    src = set(pair.interactions.loc[pair.interactions["domain"] == "films", "user"])
    tgt = set(pair.interactions.loc[pair.interactions["domain"] == "food", "user"])
    assert not src & tgt and pair.items["item"].is_unique
    split = few_shot_split(pair, "films", "food", eval_ratio=0.25, seed=0)
    assert len(split.val_users) + len(split.test_users) == 10 and split.source_known.empty
    with pytest.raises(DataError, match="unknown target domain 'nope'"):
        cross_platform(a, b, source_domain="src", target_domain="nope")
    items = pd.concat([b.items, pd.DataFrame({"item": ["x1"], "title": ["x"], "text": ["x"], "domain": ["empty"]})])
    with pytest.raises(DataError, match="target domain empty has no users"):
        cross_platform(a, RecData("toy", b.interactions, items), source_domain="src", target_domain="empty")
